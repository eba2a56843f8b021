# syntax=docker/dockerfile:1
# The operator image for people who have Docker. It holds the same files as the daemonless build
# (scripts/image.sh): the same release build, the same root filesystem laid out by
# scripts/image-rootfs.sh, the same user, entrypoint and labels; tests/package/image.rs compares the two.
#   docker build -t rekognition-operator:dev .
#   docker buildx build --platform linux/amd64,linux/arm64 -t <registry>/rekognition-operator:<tag> --push .
# Each platform builds natively (under emulation when it is not the builder's), because the image
# carries the glibc libraries of the platform it was built on.

FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates cmake clang \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY tools/cargo/install.sh tools/cargo/install.sh
RUN RKO_CACHE_DIR=/cache tools/cargo/install.sh cargo-auditable
COPY . .
# aws-lc-rs is the one TLS crypto provider; cargo auditable embeds the dependency list.
RUN PATH="/cache/cargo-tools/bin:$PATH" cargo auditable build --profile container --locked --bin rekognition-operator \
 && scripts/image-rootfs.sh target/container/rekognition-operator /rootfs

FROM scratch
ARG VERSION=0.1.0
ARG REVISION=unknown
COPY --from=build /rootfs/ /
LABEL org.opencontainers.image.title="rekognition-operator" \
      org.opencontainers.image.description="Kubernetes operator for Amazon Rekognition face collections" \
      org.opencontainers.image.source="https://github.com/aws-operators/rekognition-operator" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# 65532 is "nonroot" in the image's /etc/passwd; the Helm chart runs the pod as the same UID.
USER 65532:65532
WORKDIR /
EXPOSE 8080/tcp
ENTRYPOINT ["/rekognition-operator"]
