#!/usr/bin/env bash
# All tests, from a clean clone on a fresh Debian/Ubuntu machine: system packages, npm dependencies, build, vitest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
npm ci --no-audit --no-fund
npm test
