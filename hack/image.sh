#!/usr/bin/env bash
# make image: build the container image without a registry or a daemon and write it as a
# docker-archive that containerd (`ctr images import`), kind (`kind load image-archive`) and
# docker/podman (`load`) all take.
#
#   hack/image.sh          build .cache/image/tenantline-<version>.tar; print its name
#   hack/image.sh --ref    print the image reference (repository:version) only
#
# The tag is the crate version, which is also the chart's appVersion (a test checks they agree).
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=$(awk -F'"' '/^version = / {print $2; exit}' Cargo.toml)
IMAGE="${IMAGE:-ghcr.io/tenantline/tenantline}:$VERSION"
ARCHIVE=".cache/image/tenantline-$VERSION.tar"
[ "${1:-}" = --ref ] && { echo "$IMAGE"; exit 0; }

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
rootfs=target/image/rootfs
rm -rf "$rootfs" && mkdir -p "$rootfs/etc/ssl/certs" "$rootfs/tmp"
cp "$out/tenantline" "$out/tenantline-sim" "$rootfs/"
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
chmod 1777 "$rootfs/tmp"

mkdir -p .cache/image
hack/buildah.sh bud --quiet --timestamp 0 -f Dockerfile -t "$IMAGE" . >/dev/null
rm -f "$ARCHIVE"
hack/buildah.sh push --quiet "$IMAGE" "docker-archive:$ARCHIVE:$IMAGE" >/dev/null
size=$(hack/buildah.sh inspect --type image --format '{{.Size}}' "$IMAGE" 2>/dev/null || echo 0)
hack/buildah.sh rmi "$IMAGE" >/dev/null
printf 'image %s: %s (archive %s MiB; binaries: tenantline %s MiB, tenantline-sim %s MiB) in %ss\n' "$IMAGE" "$ARCHIVE" \
  "$(( $(stat -c %s "$ARCHIVE") / 1048576 ))" "$(( $(stat -c %s "$out/tenantline") / 1048576 ))" \
  "$(( $(stat -c %s "$out/tenantline-sim") / 1048576 ))" "$((SECONDS - start))" >&2
echo "$ARCHIVE"
