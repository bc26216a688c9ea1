# A ct-enhance GPU worker (`ct-enhance worker`): onnxruntime-node 1.29.0 with its CUDA execution provider, on NVIDIA's
# CUDA 12 runtime with cuDNN 9 (what Microsoft's 1.29 GPU build for Linux links against). Built from the repository
# root on a machine with the internet: docker build -f docker/worker-gpu.Dockerfile .
# Build stage: the official Node 20 image (Debian bookworm) with the compilers better-sqlite3 may need.
FROM node:20-bookworm AS build
WORKDIR /opt/ct-enhance
COPY package.json package-lock.json .npmrc ./
# .npmrc skips onnxruntime-node's download so that npm ci needs only the npm registry; its install script reads the
# environment variable ONNXRUNTIME_NODE_INSTALL before npm's setting (script/install-utils.js), so here `cuda12` makes it
# fetch the CUDA provider (Microsoft.ML.OnnxRuntime.Gpu.Linux 1.29.0, from NuGet) into its bin folder at build time.
RUN ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci --no-audit --no-fund \
    && test -s node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so
COPY tsconfig.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

# Run stage: NVIDIA's CUDA 12.8 runtime + cuDNN 9 on Ubuntu 24.04 (glibc 2.39, newer than bookworm's 2.36 that the
# native modules were built against). Node comes from the build stage's official image, the same binary, not from
# Ubuntu's archive (Node 18 there).
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
COPY --from=build /usr/local/bin/node /usr/local/bin/node
WORKDIR /opt/ct-enhance
COPY --from=build /opt/ct-enhance/package.json ./package.json
COPY --from=build /opt/ct-enhance/node_modules ./node_modules
COPY --from=build /opt/ct-enhance/dist ./dist
COPY models ./models
RUN useradd --system --home-dir /var/lib/ct-enhance --create-home ct-enhance
ENV CT_ENHANCE_PROVIDER=cuda CT_ENHANCE_DATA_DIR=/var/lib/ct-enhance NODE_ENV=production
USER ct-enhance
CMD ["node", "dist/cli.js", "worker"]
