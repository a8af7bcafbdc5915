# tenantline's image: the operator and the provider simulator, nothing else. No shell, no package
# manager; runs as 65532:65532 on a read-only root filesystem.
#
# `make image` builds both binaries on the host first (static glibc: they need no libc in the
# image; DNS through a pure-Rust resolver, not glibc's NSS) and lays out target/image/rootfs with
# the few files a scratch image lacks: CA certificates for HTTPS to the providers, and a passwd
# and group entry for the non-root user. This file only assembles them, so it needs no registry
# (FROM scratch) and no daemon (buildah, see hack/image.sh).
FROM scratch
COPY target/image/rootfs/ /
USER 65532:65532
ENTRYPOINT ["/tenantline"]
CMD ["run"]
