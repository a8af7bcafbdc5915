#!/usr/bin/env bash
# make image: build the two container images without a registry or a daemon and write each as a
# docker-archive that containerd (`ctr images import`), kind (`kind load image-archive`) and
# docker/podman (`load`) all take:
#   ghcr.io/tenantline/tenantline:<version>      the operator only (Dockerfile target `operator`)
#   ghcr.io/tenantline/tenantline-sim:<version>  the provider simulator only (target `simulator`)
#
#   hack/image.sh            build .cache/image/tenantline-<version>.tar and
#                            .cache/image/tenantline-sim-<version>.tar; print the operator's name
#   hack/image.sh --ref      print the operator's image reference (repository:version) only
#   hack/image.sh --sim-ref  print the simulator's image reference only
#
# The tag is the crate version, which is also the chart's appVersion (a test checks they agree).
# IMAGE (and SIM_IMAGE, default "$IMAGE-sim") override the repositories.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=$(awk -F'"' '/^version = / {print $2; exit}' Cargo.toml)
REPO="${IMAGE:-ghcr.io/tenantline/tenantline}"
IMAGE="$REPO:$VERSION"
SIM_IMAGE="${SIM_IMAGE:-$REPO-sim}:$VERSION"
ARCHIVE=".cache/image/tenantline-$VERSION.tar"
SIM_ARCHIVE=".cache/image/tenantline-sim-$VERSION.tar"
[ "${1:-}" = --ref ] && { echo "$IMAGE"; exit 0; }
[ "${1:-}" = --sim-ref ] && { echo "$SIM_IMAGE"; exit 0; }

start=$SECONDS
TARGET=$(rustc -vV | awk '/^host:/ {print $2}')
# crt-static for the target only (--target keeps build scripts and proc macros dynamic).
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$TARGET" \
  --workspace --bins
out="target/$TARGET/release"
for bin in tenantline tenantline-sim; do
  ldd "$out/$bin" 2>&1 | grep -qE 'not a dynamic executable|statically linked' || { echo "$out/$bin is not static" >&2; exit 1; }
done

[ -f /etc/ssl/certs/ca-certificates.crt ] || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates >/dev/null
}
# What both images share; each Dockerfile target adds its own binary from target/image/bin.
rootfs=target/image/rootfs
rm -rf "$rootfs" target/image/bin && mkdir -p "$rootfs/etc/ssl/certs" "$rootfs/tmp" target/image/bin
cp "$out/tenantline" "$out/tenantline-sim" target/image/bin/
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
chmod 1777 "$rootfs/tmp"

# build TARGET IMAGE ARCHIVE: one Dockerfile target, written as a docker-archive.
build() {
  hack/buildah.sh bud --quiet --timestamp 0 --target "$1" -f Dockerfile -t "$2" . >/dev/null
  rm -f "$3"
  hack/buildah.sh push --quiet "$2" "docker-archive:$3:$2" >/dev/null
  hack/buildah.sh rmi "$2" >/dev/null
}

# The paths in a docker-archive's layers, one a line.
files_of() {
  local dir
  dir=$(mktemp -d target/image/check.XXXXXX)
  tar -xf "$1" -C "$dir"
  python3 -c 'import json, sys; print(*json.load(open(sys.argv[1]))[0]["Layers"], sep="\n")' "$dir/manifest.json" |
    while read -r layer; do tar -tf "$dir/$layer"; done
  rm -rf "$dir"
}

mkdir -p .cache/image
build operator "$IMAGE" "$ARCHIVE"
build simulator "$SIM_IMAGE" "$SIM_ARCHIVE"
# The production image must not carry the simulator (nor the simulator's image the operator).
operator_files=$(files_of "$ARCHIVE")
sim_files=$(files_of "$SIM_ARCHIVE")
has() { grep -Eqx "(\./)?$2" <<<"$1"; }
has "$operator_files" tenantline || { echo "$ARCHIVE lacks /tenantline" >&2; exit 1; }
! has "$operator_files" tenantline-sim || { echo "$ARCHIVE holds /tenantline-sim: the operator image must not" >&2; exit 1; }
has "$sim_files" tenantline-sim || { echo "$SIM_ARCHIVE lacks /tenantline-sim" >&2; exit 1; }
! has "$sim_files" tenantline || { echo "$SIM_ARCHIVE holds /tenantline: the simulator image must not" >&2; exit 1; }

mib() { echo $(( $(stat -c %s "$1") / 1048576 )); }
printf 'image %s: %s (%s MiB); image %s: %s (%s MiB); in %ss\n' "$IMAGE" "$ARCHIVE" "$(mib "$ARCHIVE")" \
  "$SIM_IMAGE" "$SIM_ARCHIVE" "$(mib "$SIM_ARCHIVE")" "$((SECONDS - start))" >&2
echo "$ARCHIVE"
