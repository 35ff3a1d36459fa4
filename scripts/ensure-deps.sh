#!/usr/bin/env bash
# Installs node_modules from the lock file when they are missing or older than it, then compiles to dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "[deps] npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
echo "[deps] tsc" >&2
npx tsc -p tsconfig.json
echo "[deps] workflow bundle" >&2
node scripts/bundle-workflows.js
