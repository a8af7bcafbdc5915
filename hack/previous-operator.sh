#!/usr/bin/env bash
# The previous release of the operator, for the upgrade test (tests/e2e/upgrade.rs): its
# `tenantline` binary built from git at PREVIOUS_RELEASE, once per commit, kept in
# .cache/previous/<commit>/tenantline.
#
#   hack/previous-operator.sh         build it unless it is there; print its path
#   hack/previous-operator.sh --path  print where it is (or will be) without building
#
# The source comes from `git archive` (no worktree to prune) and builds in a target directory of
# its own: cargo tells a package's builds apart by name, version and relative paths, not by where
# the workspace is, so in target/ it would take today's build of the tenantline crate for the old
# one (or the other way round). Only the binary is kept; the build directory is removed.
#
# PREVIOUS_RELEASE: the last commit of main before the 2026-12-07 work (no tags are cut; 0.2.0
# since b7e22c5), an ancestor of main, so any clone with main's history has it; override to
# upgrade from another commit. A full debug build of the old tree (its dependencies too: nothing
# is shared with target/): 14 min measured from a fresh clone on a 2-core machine busy with other
# builds and tests; then cached per commit (CI: actions/cache, keyed on this file).
set -euo pipefail
cd "$(dirname "$0")/.."
PREVIOUS_RELEASE="${PREVIOUS_RELEASE:-c9469e5}"

if ! commit=$(git rev-parse --verify --quiet "$PREVIOUS_RELEASE^{commit}"); then
  echo "hack/previous-operator.sh: commit $PREVIOUS_RELEASE is not in this clone (a shallow clone? git fetch --unshallow; the CI checkout needs fetch-depth: 0)" >&2
  exit 1
fi
dir=".cache/previous/${commit:0:12}"
binary="$PWD/$dir/tenantline"
if [ "${1:-}" = --path ]; then
  echo "$binary"
  exit 0
fi
if [ -x "$binary" ]; then
  echo "$binary"
  exit 0
fi

start=$SECONDS
rm -rf "$dir/src" "$dir/target"
mkdir -p "$dir/src"
git archive "$commit" | tar -x -C "$dir/src"
# No debug info: the test only runs it, and the build and link are faster without.
CARGO_PROFILE_DEV_DEBUG=0 cargo build --locked --quiet --bin tenantline \
  --manifest-path "$dir/src/Cargo.toml" --target-dir "$dir/target" >&2
cp "$dir/target/debug/tenantline" "$binary.tmp"
mv "$binary.tmp" "$binary"
rm -rf "$dir/src" "$dir/target"
echo "hack/previous-operator.sh: built tenantline at ${commit:0:12} in $((SECONDS - start)) s" >&2
echo "$binary"
