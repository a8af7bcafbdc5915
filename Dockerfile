# tenantline's two images, one target each: `operator` (ghcr.io/tenantline/tenantline, what the
# chart runs) and `simulator` (ghcr.io/tenantline/tenantline-sim, for tests and demos). The
# operator's image holds no simulator: a production cluster gets no fake provider to point at.
# No shell, no package manager; both run as 65532:65532 on a read-only root filesystem.
#
# `make image` builds both binaries on the host first (static glibc: they need no libc in the
# image; DNS through a pure-Rust resolver, not glibc's NSS) and lays out target/image/rootfs with
# the few files a scratch image lacks: CA certificates for HTTPS to the providers, and a passwd
# and group entry for the non-root user; the binaries wait in target/image/bin. This file only
# assembles them, so it needs no registry (FROM scratch) and no daemon (buildah, see
# hack/image.sh).
FROM scratch AS operator
COPY target/image/rootfs/ /
COPY target/image/bin/tenantline /tenantline
USER 65532:65532
ENTRYPOINT ["/tenantline"]
CMD ["run"]

FROM scratch AS simulator
COPY target/image/rootfs/ /
COPY target/image/bin/tenantline-sim /tenantline-sim
USER 65532:65532
ENTRYPOINT ["/tenantline-sim"]
# In a container the simulator must listen beyond loopback; its own default is 127.0.0.1.
CMD ["--listen", "0.0.0.0:8787"]
