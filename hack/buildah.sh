#!/usr/bin/env bash
# buildah with the project's own image store (.cache/buildah, vfs: no mounts left behind), no
# registry and no daemon. Images leave the store as docker-archive files (see make image).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v buildah >/dev/null || {
  echo "installing buildah (Debian package)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends buildah >/dev/null
}
store="$PWD/.cache/buildah"
mkdir -p "$store"
exec buildah --root "$store/root" --runroot "$store/run" --storage-driver vfs "$@"
