# secgate as a container image, for the sharded-scan recipes in deploy/ (a GitHub Actions
# matrix, a Kubernetes Indexed Job). Not built in this repository's CI: build and push it
# where you run it, e.g.
#   docker build -t registry.example.internal/secgate:0.1.0 .
# Stage 1 builds a release binary; stage 2 is a distroless image with only glibc and
# libgcc (what the binary links), running as the non-root user 65532.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake clang \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin secgate \
    && install -m 0755 target/release/secgate /secgate

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /secgate /usr/local/bin/secgate
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/secgate"]
CMD ["--help"]
