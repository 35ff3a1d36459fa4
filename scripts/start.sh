#!/usr/bin/env bash
# `npm start`: dependencies, the temporal CLI (built once per machine), then the engine on embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pinned-node.sh
bash scripts/ensure-deps.sh
bash scripts/servers.sh temporal
# Same V8 settings as the image (see Dockerfile): bounded memory while snapshots stream through the worker.
export NODE_OPTIONS="${NODE_OPTIONS:-} --max-semi-space-size=2 --expose-gc"
exec node dist/src/start.js
