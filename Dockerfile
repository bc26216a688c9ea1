# ct-enhance on the CPU: the follower of a scale-out site (`ct-enhance serve` with CT_ENHANCE_REDIS_URL set), or the
# whole embedded node (`serve` without it). Orthanc has its own image (docker/orthanc.Dockerfile), GPU workers theirs
# (docker/worker-gpu.Dockerfile); docker-compose.yml puts them together. Not built on our development machines (they
# have no Docker engine); the supported path there is scripts/demo.sh.
FROM node:20-bookworm AS build
WORKDIR /opt/ct-enhance
COPY package.json package-lock.json .npmrc ./
RUN ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /opt/ct-enhance
COPY --from=build /opt/ct-enhance/package.json ./package.json
COPY --from=build /opt/ct-enhance/node_modules ./node_modules
COPY --from=build /opt/ct-enhance/dist ./dist
COPY models ./models
RUN mkdir -p /var/lib/ct-enhance && chown node:node /var/lib/ct-enhance
ENV CT_ENHANCE_DATA_DIR=/var/lib/ct-enhance CT_ENHANCE_HOST=0.0.0.0 NODE_ENV=production
USER node
EXPOSE 8190
CMD ["node", "dist/cli.js", "serve"]
