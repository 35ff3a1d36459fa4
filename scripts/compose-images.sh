#!/usr/bin/env bash
# Builds, on this machine and with no container registry, the images docker-compose.local.yml runs the stack on
# (deploy/local-images/README.md says what each is made from), each tagged `lifeboat-local/<name>:local`: the versions
# are those scripts/servers.sh pins. The base is made once (debootstrap, docker import); the others are rebuilt every
# time, which Docker's layer cache makes a matter of seconds when nothing changed.
#
#   scripts/compose-images.sh        needs dockerd running and the servers built: scripts/servers.sh (default set)
#                                    and scripts/servers.sh docker temporal-ui
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pinned-node.sh
CACHE="${LIFEBOAT_CACHE:-$HOME/.cache/lifeboat}"
# Where npm's own package comes from for the Node image (the official image ships npm too).
NPM_VERSION="${NPM_VERSION:-11.19.1}"
BASE=lifeboat-local/debian:bookworm
log() { printf '[compose-images] %s\n' "$*" >&2; }
declare -A bins
while IFS='=' read -r k v; do bins[$k]="$v"; done < <(bash scripts/servers.sh --print)

# The Debian mirror this machine's apt uses (deb822 URIs: or a one-line `deb` entry), so the base needs no other.
debian_mirror() {
  local m
  m="$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p; s/^deb \(\[[^]]*\] \)\{0,1\}\(http[^ ]*debian\/\{0,1\}\) bookworm .*/\2/p' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null | grep -m1 -E '/debian/?$' || true)"
  echo "${m:-http://deb.debian.org/debian}"
}

if docker image inspect "$BASE" >/dev/null 2>&1; then log "$BASE present"; else
  start=$SECONDS
  tmp="$(mktemp -d "$CACHE/.build.XXXXXX")"
  mirror="$(debian_mirror)"
  log "making $BASE: debootstrap --variant=minbase bookworm from $mirror"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$tmp/rootfs" "$mirror" > "$tmp/debootstrap.log" 2>&1 || {
    tail -n 20 "$tmp/debootstrap.log" >&2
    exit 1
  }
  # The images trust what this machine trusts: its local CAs too (a TLS-inspecting egress proxy's, here), or npm in
  # the worker's build could not reach the registry the host reaches.
  cp /usr/local/share/ca-certificates/*.crt "$tmp/rootfs/usr/local/share/ca-certificates/" 2>/dev/null || true
  chroot "$tmp/rootfs" update-ca-certificates >/dev/null 2>&1
  rm -rf "$tmp"/rootfs/var/cache/apt/archives/*.deb "$tmp"/rootfs/var/lib/apt/lists/*
  tar -C "$tmp/rootfs" -c . | docker import -c 'CMD ["bash"]' -m "debootstrap --variant=minbase bookworm $mirror" - "$BASE" >/dev/null
  rm -rf "$tmp"
  log "made $BASE in $((SECONDS - start))s"
fi

npm_tgz="$CACHE/npm-$NPM_VERSION.tgz"
if [[ ! -f "$npm_tgz" ]]; then
  tmp="$(mktemp -d "$CACHE/.build.XXXXXX")"
  (cd "$tmp" && npm pack --silent "npm@$NPM_VERSION" >/dev/null)
  mv "$tmp"/npm-*.tgz "$npm_tgz" && rm -rf "$tmp"
fi

# One image: its folder in deploy/local-images plus the files given as dest=source (hard links into a scratch context).
build() { # tag, folder, dest=source...
  local tag="$1" dir="deploy/local-images/$2" ctx f start=$SECONDS
  shift 2
  ctx="$(mktemp -d "$CACHE/.build.XXXXXX")"
  cp -r "$dir/." "$ctx/"
  for f in "$@"; do
    mkdir -p "$(dirname "$ctx/${f%%=*}")"
    cp -al "${f#*=}" "$ctx/${f%%=*}" 2>/dev/null || cp -a "${f#*=}" "$ctx/${f%%=*}"
  done
  if docker build -q --build-arg "BASE=$BASE" -t "$tag" "$ctx" >"$ctx/.build.log" 2>&1; then
    log "$tag built ($((SECONDS - start))s)"
    rm -rf "$ctx"
  else
    cat "$ctx/.build.log" >&2
    rm -rf "$ctx"
    log "$tag failed"
    return 1
  fi
}
build lifeboat-local/node:local node "bin/node=$(command -v node | xargs readlink -f)" "npm.tgz=$npm_tgz"
etcd_dir="${bins[LIFEBOAT_ETCD36_DIR]}"
build lifeboat-local/etcd:local etcd "etcd=$etcd_dir/etcd" "etcdctl=$etcd_dir/etcdctl" "etcdutl=$etcd_dir/etcdutl"
build lifeboat-local/postgresql:local postgresql
server_dir="$(dirname "${bins[LIFEBOAT_TEMPORAL_SERVER_BIN]}")"
build lifeboat-local/temporal:local temporal \
  "temporal-server=$server_dir/temporal-server" "temporal-sql-tool=$server_dir/temporal-sql-tool" "schema=$server_dir/schema" \
  "temporal=${bins[LIFEBOAT_TEMPORAL_BIN]}"
ui_dir="${bins[LIFEBOAT_TEMPORAL_UI_DIR]}"
build lifeboat-local/temporal-ui:local temporal-ui "ui-server=$ui_dir/ui-server" "config/docker.yaml=$ui_dir/config/docker.yaml"
build lifeboat-local/minio:local minio "minio=${bins[LIFEBOAT_MINIO_BIN]}"
