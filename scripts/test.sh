#!/usr/bin/env bash
# `npm test`: installs what the tests need (node modules, the real servers: built once per machine), runs every test
# against them, and ends with one line "N passed, N failed" taken from jest's own JSON results.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh || { echo "0 passed, 1 failed"; exit 1; }
bash scripts/servers.sh || { echo "server build failed"; echo "0 passed, 1 failed"; exit 1; }
results="$(mktemp -t lifeboat-jest-XXXXXX.json)"
npx jest --runInBand --json --outputFile="$results" "$@"
status=$?
node scripts/summary.js "$results" || status=1
rm -f "$results"
exit $status
