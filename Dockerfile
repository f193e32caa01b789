# The operator's container image, for those who build with Docker:
#   docker build -t <registry>/qlik-csp-operator:0.1.0 .
# The reference build is `cargo xtask image` (no container runtime, reproducible digest; see
# the README). This file makes the same file system: the base comes from the same script,
# xtask/src/image/rootfs.sh (Debian's glibc, libgcc and CA certificates, the user 65532; no
# shell, no package manager), then the release binary. tests/image.rs checks that the two
# agree on that script, the Debian release, the user, the entrypoint and the command.

# The binary, built against the glibc of the Debian release the base below comes from.
FROM docker.io/library/rust:1.89-bookworm AS builder
WORKDIR /src
COPY . .
RUN cargo build --release --locked --package qlik-csp-operator --bin qlik-csp-operator \
    && install -D target/release/qlik-csp-operator /out/qlik-csp-operator

# The base: the root file system without the binary, from Debian's packages.
FROM docker.io/library/debian:bookworm-slim AS rootfs
COPY xtask/src/image/rootfs.sh /usr/local/share/rootfs.sh
RUN apt-get update \
    && sh /usr/local/share/rootfs.sh /rootfs /tmp/rootfs-work \
    && rm -rf /var/lib/apt/lists/* /tmp/rootfs-work

FROM scratch
COPY --from=rootfs /rootfs/ /
COPY --from=builder /out/qlik-csp-operator /usr/local/bin/qlik-csp-operator
ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin
# The chart's runAsUser; numeric so that runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/qlik-csp-operator"]
CMD ["run"]
