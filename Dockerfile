# syntax=docker/dockerfile:1
# weft: one image for the controller, the init container and the sidecar proxy.
# The build stage's steps live in scripts/build-image-stage.sh, which CI also runs
# (`--check`) so this file cannot rot without a red build.

FROM node:24-bookworm AS build
WORKDIR /src
COPY . .
RUN bash scripts/build-image-stage.sh --out /out

FROM node:24-bookworm-slim
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="weft" \
      org.opencontainers.image.description="Kubernetes service-mesh data plane: TPROXY or eBPF interception and a TypeScript sidecar proxy" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/weft-dev/weft"
# iptables ships both backends (iptables-nft and iptables-legacy); `weft init` detects
# which one the node uses. libbpf1 is the native addon's runtime library.
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables iproute2 libbpf1 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out /opt/weft
RUN ln -s /opt/weft/bin/weft /usr/local/bin/weft
ENV NODE_ENV=production
WORKDIR /opt/weft
# Non-root by default (the controller and the eBPF-mode proxy); weft-init and the
# TPROXY-mode proxy get their uid and capabilities from the injected securityContext.
USER 65532:65532
ENTRYPOINT ["weft"]
CMD ["version"]
