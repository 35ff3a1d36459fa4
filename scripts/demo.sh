#!/usr/bin/env bash
# `npm run demo`: dependencies, the real servers (built once per machine), then the whole backup-and-recovery story.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pinned-node.sh
bash scripts/ensure-deps.sh
bash scripts/servers.sh
exec node dist-testbed/sandbox/demo.js
