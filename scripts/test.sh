#!/usr/bin/env bash
# All tests, from a clean clone on a fresh Debian/Ubuntu machine: system packages, npm dependencies, build, vitest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
# onnxruntime-node's install stays skipped (npm ci needs only the npm registry) also when npm stops passing .npmrc's
# onnxruntime-node-install to install scripts, as npm 11 warns it will: its script reads this variable first.
export ONNXRUNTIME_NODE_INSTALL=${ONNXRUNTIME_NODE_INSTALL:-skip}
npm ci --no-audit --no-fund
npm test
