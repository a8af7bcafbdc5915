#!/usr/bin/env bash
# make e2e's guard against tests that pass without running.
#
#   hack/e2e-require.sh                 check TENANTLINE_E2E_SKIP and say loudly what it skips
#   hack/e2e-require.sh restart CMD...  run CMD (the restart test) if KUBECONFIG names the local
#                                       control plane it restarts; else fail saying why, unless
#                                       TENANTLINE_E2E_SKIP names restart (then say so, loudly)
#
# TENANTLINE_E2E_SKIP (comma-separated: node, restart, upgrade) is the only way to skip those
# groups under make: the node tests (a Ready node with the images), the restart test (the local
# control plane) and the upgrade tests (the previous release's binary). The e2e tests check theirs
# themselves (tests/e2e/support.rs, cannot_run) under TENANTLINE_E2E_STRICT=1, which make e2e sets.
# The restart test's own check skips on any other cluster (a test run by hand on kind must not
# fail for it), so under make this script makes the same check first and fails instead.
set -euo pipefail
cd "$(dirname "$0")/.."

skipped() { case ",${TENANTLINE_E2E_SKIP:-}," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

IFS=, read -r -a names <<<"${TENANTLINE_E2E_SKIP:-}"
for name in "${names[@]}"; do
  case "$name" in
    node | restart | upgrade) ;;
    *) echo "TENANTLINE_E2E_SKIP=${TENANTLINE_E2E_SKIP}: '$name' is none of node, restart, upgrade" >&2; exit 1 ;;
  esac
done

if [ $# -eq 0 ]; then
  if [ -n "${TENANTLINE_E2E_SKIP:-}" ]; then
    echo "************************************************************************************"
    echo "* make e2e: SKIPPING ON PURPOSE (TENANTLINE_E2E_SKIP=${TENANTLINE_E2E_SKIP}): those tests pass without running"
    echo "************************************************************************************"
  fi
  exit 0
fi

what=$1
shift
case "$what" in
  restart)
    cluster="$PWD/.cache/cluster"
    named=$(realpath -q "${KUBECONFIG:-}" || true)
    if [ -e "$cluster/apiserver.pid" ] && [ "$named" = "$(realpath -q "$cluster/kubeconfig" || true)" ]; then
      exec "$@"
    fi
    why="the restart test restarts the local control plane (hack/cluster.sh), and KUBECONFIG=${KUBECONFIG:-} does not name it"
    ;;
  *) echo "hack/e2e-require.sh: no check for '$what'" >&2; exit 1 ;;
esac
if skipped "$what"; then
  echo "*** SKIPPED ON PURPOSE (TENANTLINE_E2E_SKIP=${TENANTLINE_E2E_SKIP}): $why ***"
  exit 0
fi
echo "hack/e2e-require.sh: $why. Run make test without KUBECONFIG (it starts the local control plane), or skip it on purpose with TENANTLINE_E2E_SKIP=$what" >&2
exit 1
