# ct-enhance and the Orthanc it serves, from Debian's packages (the same ones scripts/install-system-deps.sh installs).
# Not built on our development machines (they have no Docker engine); the supported path there is scripts/demo.sh.
FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends orthanc orthanc-dicomweb orthanc-python python3 g++ make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/ct-enhance
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY models ./models
COPY orthanc-config ./orthanc-config
RUN npm run build && npm prune --omit=dev
ENV CT_ENHANCE_DATA_DIR=/var/lib/ct-enhance CT_ENHANCE_HOST=0.0.0.0
EXPOSE 8190
CMD ["node", "dist/cli.js", "serve"]
