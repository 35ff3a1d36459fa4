#!/usr/bin/env bash
# `npm start`: dependencies, the temporal CLI (built once per machine), then the engine on embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pinned-node.sh
bash scripts/ensure-deps.sh
bash scripts/servers.sh temporal
# Same V8 and malloc settings as the image (see Dockerfile): bounded memory while snapshots stream through the worker.
export NODE_OPTIONS="${NODE_OPTIONS:-} --max-semi-space-size=2 --expose-gc"
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}" MALLOC_MMAP_THRESHOLD_="${MALLOC_MMAP_THRESHOLD_:-131072}"
exec node dist/src/start.js
