# The operator's container image: the release binary on a distroless, non-root base.
# Not built by this repository's tests or CI (they run without Docker); build it yourself:
#   docker build -t <registry>/qlik-csp-operator:0.1.0 .
# and set the Helm value image.repository (and image.tag) to it.

FROM docker.io/library/rust:1.89-bookworm AS builder
WORKDIR /src
COPY . .
RUN cargo build --release --locked --package qlik-csp-operator --bin qlik-csp-operator \
    && install -D target/release/qlik-csp-operator /out/qlik-csp-operator

# glibc, libgcc and CA certificates (for the tenants' TLS), no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/qlik-csp-operator /usr/local/bin/qlik-csp-operator
# The chart's runAsUser; numeric so runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/qlik-csp-operator"]
CMD ["run"]
