#!/usr/bin/env bash
# `npm run test:loop -- <runs> <test file>...`: runs the given test files <runs> times each, one after the other, against
# the same real servers as `npm test`, and says which case failed how often. A flaky case is a defect at its cause;
# this is how it is found and how a fix is shown to hold (the files that ever flaked pass ten runs in a row).
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/pinned-node.sh
runs="${1:?usage: npm run test:loop -- <runs> <test file>...}"
shift
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "runs: expected a positive whole number, got \"$runs\"" >&2; exit 2; }
(($#)) || { echo "test files: name at least one (e.g. test/integration/drill.test.ts)" >&2; exit 2; }
for f in "$@"; do [[ -f "$f" ]] || { echo "test file: $f does not exist" >&2; exit 2; }; done
bash scripts/ensure-deps.sh || exit 1
bash scripts/servers.sh >/dev/null || exit 1
run_tmp="$(mktemp -d -t lifeboat-loop-XXXXXX)"
export TMPDIR="$run_tmp"
for ((i = 1; i <= runs; i++)); do
  npx jest --runInBand --json --outputFile="$run_tmp/run-$i.json" "$@" >"$run_tmp/run-$i.log" 2>&1
  echo "[loop] run $i of $runs: $(node scripts/summary.js "$run_tmp/run-$i.json" | tail -1)"
done
node scripts/loop-summary.js "$run_tmp"/run-*.json
status=$?
if [[ -z "${LIFEBOAT_KEEP_TMP:-}" ]]; then rm -rf "$run_tmp" 2>/dev/null || true; else echo "[loop] kept $run_tmp (each run's log and results)" >&2; fi
exit $status
