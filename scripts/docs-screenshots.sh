#!/usr/bin/env bash
# `npm run docs:screenshots`: builds what the test bed needs (node modules, the servers, the test bed's code) and
# saves the docs' pictures (docs/images/) from a real run: see test/screenshots/docs-screenshots.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pinned-node.sh
bash scripts/ensure-deps.sh
bash scripts/servers.sh
npm run build --silent
npx tsc -p tsconfig.json
exec node dist-testbed/test/screenshots/docs-screenshots.js
