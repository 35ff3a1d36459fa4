#!/usr/bin/env bash
# `npm run bench:backup` / `bench:recovery` / `bench:alert` / `bench:drill` / `bench:continuous` / `bench:fleet`: builds
# what the benchmark needs (node modules, the servers, the AWS CLI from PyPI for the plain-script baseline) and runs it,
# passing on its flags (`npm run bench:fleet -- --clusters 20`). Prints figures; asserts nothing. `npm run soak --
# --minutes N --seed S` (docs/soak.md) runs the same way; it exits 1 when an invariant broke.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pinned-node.sh
which="${1:?usage: bench.sh backup|recovery|alert|drill|continuous|fleet|soak [flags]}"
shift
bash scripts/ensure-deps.sh
bash scripts/servers.sh
CACHE="${LIFEBOAT_CACHE:-$HOME/.cache/lifeboat}"
venv="$CACHE/awscli-venv"
if [[ "$which" != alert && "$which" != continuous && "$which" != fleet && "$which" != soak && ! -x "$venv/bin/aws" ]]; then
  echo "[bench] installing the AWS CLI (PyPI) into $venv" >&2
  python3 -m venv "$venv" 2>/dev/null || { apt-get install -y -qq python3-venv >/dev/null && python3 -m venv "$venv"; }
  "$venv/bin/pip" install -q awscli
fi
export LIFEBOAT_AWS_CLI="$venv/bin/aws"
exec node "dist-testbed/bench/$which.js" "$@"
