#!/usr/bin/env bash
# `npm start`: dependencies, the temporal CLI (built once per machine), then the engine on embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
bash scripts/servers.sh temporal
exec node dist/src/start.js
