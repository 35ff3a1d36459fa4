#!/usr/bin/env bash
# `npm run compose:up`: the compose stack for real on this machine, with no registry. Installs and starts Docker
# (scripts/servers.sh docker), builds every image here (scripts/compose-images.sh, then the worker from the
# Dockerfile), and runs test/compose: `docker-compose up` of docker-compose.yml + docker-compose.local.yml, every
# service healthy, a sandbox cluster backed up by the composed worker into the composed MinIO and found by the Temporal
# CLI and UI, `docker-compose stop` draining the worker, `docker-compose down -v`. Prints how long each part took.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/pinned-node.sh
t0=$SECONDS
bash scripts/ensure-deps.sh || exit 1
# The sandbox cluster's servers (the default set, as npm test builds them), then Docker and the Temporal UI server.
bash scripts/servers.sh || exit 1
bash scripts/servers.sh docker temporal-ui || exit 1
t1=$SECONDS
bash scripts/compose-images.sh || exit 1
echo "[compose] building the worker image from the Dockerfile" >&2
docker-compose -f docker-compose.yml -f docker-compose.local.yml build -q worker || exit 1
t2=$SECONDS
run_tmp="$(mktemp -d -t lifeboat-compose-run-XXXXXX)"
chmod 711 "$run_tmp"
TMPDIR="$run_tmp" npx jest -c jest.compose.config.js --runInBand "$@"
status=$?
t3=$SECONDS
if [[ -n "${LIFEBOAT_KEEP_SANDBOX:-}" ]]; then echo "[compose] kept $run_tmp" >&2; else rm -rf "$run_tmp"; fi
echo "[compose] servers and Docker: $((t1 - t0))s, images: $((t2 - t1))s, stack up + proof + down: $((t3 - t2))s" >&2
exit $status
