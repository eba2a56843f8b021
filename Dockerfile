# syntax=docker/dockerfile:1
# Multi-stage build of a static rekognition-operator binary on a distroless, non-root base.
#   docker build -t rekognition-operator:dev .
#   docker buildx build --platform linux/amd64,linux/arm64 -t <registry>/rekognition-operator:<tag> --push .

FROM --platform=$BUILDPLATFORM rust:1.95-bookworm AS build
ARG TARGETARCH
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools cmake clang \
 && rm -rf /var/lib/apt/lists/*
RUN case "$TARGETARCH" in \
      amd64) echo x86_64-unknown-linux-musl > /rust-target ;; \
      arm64) echo aarch64-unknown-linux-musl > /rust-target ;; \
      *) echo "unsupported architecture $TARGETARCH" >&2; exit 1 ;; \
    esac \
 && rustup target add "$(cat /rust-target)"
WORKDIR /src
COPY . .
# Static (musl) build: the image needs no libc. aws-lc-rs is the one TLS crypto provider.
RUN target="$(cat /rust-target)" \
 && cargo build --release --locked --target "$target" --bin rekognition-operator \
 && cp "target/$target/release/rekognition-operator" /rekognition-operator

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /rekognition-operator /rekognition-operator
# 65532 is distroless's "nonroot" user; the Helm chart runs the pod as the same UID.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/rekognition-operator"]
