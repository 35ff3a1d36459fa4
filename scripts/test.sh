#!/usr/bin/env bash
# `npm test`: installs what the tests need (node modules, the real servers: built once per machine), runs every test
# against them, and ends with one line "N passed, N failed" taken from jest's own JSON results.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/pinned-node.sh
bash scripts/ensure-deps.sh || { echo "0 passed, 1 failed"; exit 1; }
bash scripts/servers.sh || { echo "server build failed"; echo "0 passed, 1 failed"; exit 1; }
# Everything the tests write to a temp dir (MinIO data, node folders, keys) goes under one folder for this run,
# removed at the end (LIFEBOAT_KEEP_TMP=1 or LIFEBOAT_KEEP_SANDBOX=1 keeps it for a look), so repeated runs do not fill the disk.
run_tmp="$(mktemp -d -t lifeboat-run-XXXXXX)"
# Traversable (not listable) by other users: the test bed's PostgreSQL runs as the postgres user, in a folder in here.
chmod 711 "$run_tmp"
export TMPDIR="$run_tmp"
# Files side by side (the suite mostly waits: heartbeat timeouts, kube-apiserver starts, Alertmanager groups), each
# jest worker with its own Temporal and MinIO (test/global-setup.ts); LIFEBOAT_TEST_LANES says how many (3). The
# files whose proof is a timing window run after, one at a time: alert-recovery's response must see a restarted
# scheduler within its 6 s confirm window, and prometheus-alertmanager's flapping alert must stay inside
# Alertmanager's group timers. Arguments (a file, -t) run as given, in band: that is how one file is rerun.
alone=(test/integration/alert-recovery.test.ts test/integration/prometheus-alertmanager.test.ts)
status=0
if (($#)); then
  npx jest --runInBand --json --outputFile="$run_tmp/jest-results.json" "$@" || status=1
else
  npx jest --maxWorkers="${LIFEBOAT_TEST_LANES:-3}" --json --outputFile="$run_tmp/jest-results-side-by-side.json" \
    --testPathIgnorePatterns /node_modules/ "${alone[@]/%/$}" || status=1
  npx jest --runInBand --json --outputFile="$run_tmp/jest-results-alone.json" --runTestsByPath "${alone[@]}" || status=1
fi
node scripts/summary.js "$run_tmp"/jest-results*.json || status=1
if [[ -n "${LIFEBOAT_KEEP_TMP:-}${LIFEBOAT_KEEP_SANDBOX:-}" ]]; then echo "[test] kept $run_tmp" >&2; else rm -rf "$run_tmp" 2>/dev/null || true; fi
exit $status
