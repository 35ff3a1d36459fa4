#!/usr/bin/env bash
# Obtains every real server the tests and the demo use, once per machine, into a cache outside the repo keyed by
# version. Anything already built is skipped. Prints progress and, at the end, how long each cold build took.
#
#   scripts/servers.sh                 build/install everything missing
#   scripts/servers.sh temporal minio  only these (of: apt postgres temporal temporal-server minio etcd kube crictl pause)
#   scripts/servers.sh docker temporal-ui   the compose stack's extras, never built by default (npm run compose:up):
#                                      Debian's Docker engine, started if it is not running, and the Temporal UI server
#   scripts/servers.sh --print         print the env lines (LIFEBOAT_*_BIN=...) the tests read, build nothing
set -euo pipefail

CACHE="${LIFEBOAT_CACHE:-$HOME/.cache/lifeboat}"
TEMPORAL_CLI_VERSION="${TEMPORAL_CLI_VERSION:-v1.5.1}"
# The real Temporal server (and its SQL schema tool) at the version docker-compose.yml runs (temporalio/auto-setup).
TEMPORAL_SERVER_VERSION="${TEMPORAL_SERVER_VERSION:-v1.29.1}"
# The Temporal UI server at the version docker-compose.yml runs (temporalio/ui); its Go module embeds the built UI.
TEMPORAL_UI_VERSION="${TEMPORAL_UI_VERSION:-v2.42.1}"
# MinIO's documented install is `go install github.com/minio/minio@latest`; we pin the version `latest` resolved to
# when this was written so every machine tests the same server (override with MINIO_VERSION=latest).
MINIO_VERSION="${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
ETCD36_VERSION="${ETCD36_VERSION:-v3.6.16}"
ETCD35_VERSION="${ETCD35_VERSION:-v3.5.35}"
KUBE_VERSION="${KUBE_VERSION:-v1.34.4}"
CRICTL_VERSION="${CRICTL_VERSION:-v1.34.0}"
# The sandbox's pause image: scripts/pause/main.go, built static. Bump when that file changes.
PAUSE_VERSION="${PAUSE_VERSION:-1}"

temporal_bin="$CACHE/temporal-$TEMPORAL_CLI_VERSION/temporal"
temporal_server_dir="$CACHE/temporal-server-$TEMPORAL_SERVER_VERSION"
temporal_ui_dir="$CACHE/temporal-ui-$TEMPORAL_UI_VERSION"
minio_bin="$CACHE/minio-$MINIO_VERSION/minio"
etcd36_dir="$CACHE/etcd-$ETCD36_VERSION"
etcd35_dir="$CACHE/etcd-$ETCD35_VERSION"
kube_dir="$CACHE/kubernetes-$KUBE_VERSION"
crictl_bin="$CACHE/crictl-$CRICTL_VERSION/crictl"
pause_bin="$CACHE/pause-$PAUSE_VERSION/pause"

# Debian's postgresql package puts the server programs (initdb, postgres, pg_ctl) in a folder named by its major
# version, off PATH; the newest one installed, or where Debian 12's would go.
postgres_bin_dir() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  echo "${d:-/usr/lib/postgresql/15/bin}"
}

print_env() {
  echo "LIFEBOAT_TEMPORAL_BIN=$temporal_bin"
  echo "LIFEBOAT_TEMPORAL_SERVER_BIN=$temporal_server_dir/temporal-server"
  echo "LIFEBOAT_TEMPORAL_SQL_TOOL_BIN=$temporal_server_dir/temporal-sql-tool"
  echo "LIFEBOAT_TEMPORAL_SCHEMA_DIR=$temporal_server_dir/schema"
  echo "LIFEBOAT_TEMPORAL_UI_DIR=$temporal_ui_dir"
  echo "LIFEBOAT_POSTGRES_BIN_DIR=$(postgres_bin_dir)"
  echo "LIFEBOAT_MINIO_BIN=$minio_bin"
  echo "LIFEBOAT_ETCD36_DIR=$etcd36_dir"
  echo "LIFEBOAT_ETCD35_DIR=$etcd35_dir"
  echo "LIFEBOAT_ETCD34_DIR=/usr/bin"
  echo "LIFEBOAT_KUBE_APISERVER_BIN=$kube_dir/kube-apiserver"
  echo "LIFEBOAT_KUBE_SCHEDULER_BIN=$kube_dir/kube-scheduler"
  echo "LIFEBOAT_KUBE_CONTROLLER_MANAGER_BIN=$kube_dir/kube-controller-manager"
  echo "LIFEBOAT_KUBELET_BIN=$kube_dir/kubelet"
  echo "LIFEBOAT_CRICTL_BIN=$crictl_bin"
  echo "LIFEBOAT_PAUSE_BIN=$pause_bin"
  echo "LIFEBOAT_CONTAINERD_BIN=/usr/bin/containerd"
  echo "LIFEBOAT_CTR_BIN=/usr/bin/ctr"
  echo "LIFEBOAT_RUNC_BIN=/usr/sbin/runc"
  echo "LIFEBOAT_IMAGES_DIR=$CACHE/images"
}
if [[ "${1:-}" == "--print" ]]; then print_env; exit 0; fi

mkdir -p "$CACHE"
wanted=" ${*:-apt postgres temporal temporal-server minio etcd kube crictl pause} "
want() { [[ "$wanted" == *" $1 "* ]]; }
declare -a timings=()
log() { printf '[servers] %s\n' "$*" >&2; }
timed() { # name, command...
  local name="$1"; shift
  local start=$SECONDS
  log "building $name (cold build; this can take minutes)"
  "$@"
  timings+=("$name: $((SECONDS - start))s")
  log "built $name in $((SECONDS - start))s"
}

# containerd and runc run the sandbox nodes' static pods under a real kubelet (each node starts its own containerd).
# chromium is the real browser the Temporal UI tests drive (playwright-core cannot download one here).
# nginx-light: a TLS/mTLS-terminating gRPC proxy (grpc_pass) in front of the dev server for the Temporal TLS tests.
apt_packages=(etcd-server etcd-client openssh-server iproute2 docker-compose openssl zstd prometheus prometheus-alertmanager containerd runc chromium nginx-light)
apt_install() { # what, packages...
  local what="$1" p
  shift
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if ((${#missing[@]} == 0)); then log "$what: Debian packages present"; return; fi
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # Debian's etcd-server package starts a system etcd on 2379, containerd a system containerd, postgresql a system
  # cluster on 5432; policy-rc.d keeps every service from starting.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
}
if want apt; then apt_install apt "${apt_packages[@]}"; fi
# PostgreSQL under the real Temporal server (test/support/temporal-postgres.ts runs its own cluster in a temp folder).
if want postgres; then apt_install postgres postgresql; fi

# Debian's Docker engine for the compose stack (npm run compose:up; no test in `npm test` needs it), and debootstrap,
# which makes the stack's base image (scripts/compose-images.sh: no registry is needed). This machine has no systemd:
# dockerd is started here, in the background, if nothing answers on its socket. overlay2 and Docker's own iptables
# rules (NAT for the containers' way out, the published ports) both work on this kernel; vfs is the fallback when
# overlay2 refuses (a kernel without overlayfs, or data on a filesystem it cannot stack on).
docker_log="$CACHE/dockerd.log"
start_dockerd() {
  local driver i
  for driver in ${LIFEBOAT_DOCKER_STORAGE_DRIVER:-overlay2 vfs}; do
    log "starting dockerd (storage driver $driver; log: $docker_log)"
    setsid dockerd --storage-driver="$driver" >>"$docker_log" 2>&1 < /dev/null &
    echo $! > "$CACHE/dockerd.pid"
    for i in $(seq 1 60); do
      if docker info >/dev/null 2>&1; then log "dockerd is up (pid $(cat "$CACHE/dockerd.pid"), storage driver $driver)"; return; fi
      kill -0 "$(cat "$CACHE/dockerd.pid")" 2>/dev/null || break
      sleep 0.5
    done
    kill "$(cat "$CACHE/dockerd.pid")" 2>/dev/null || true
    log "dockerd did not come up with $driver; its log ends:"; tail -n 5 "$docker_log" >&2
  done
  log "dockerd could not start (log: $docker_log)"
  return 1
}
if want docker; then
  apt_install docker docker.io docker-compose debootstrap
  if docker info >/dev/null 2>&1; then log "dockerd is running"; else start_dockerd; fi
fi

go_install() { # dest-binary, module@version
  local dest="$1" mod="$2" tmp
  tmp="$(mktemp -d "$CACHE/.build.XXXXXX")"
  GOBIN="$tmp" GOFLAGS=-buildvcs=false go install "$mod"
  mv "$tmp/$(basename "$dest")" "$dest.part" && mv "$dest.part" "$dest"
  rm -rf "$tmp"
}

if ! want temporal; then :; elif [[ -x "$temporal_bin" ]]; then log "temporal $TEMPORAL_CLI_VERSION cached"; else
  mkdir -p "$(dirname "$temporal_bin")"
  timed "temporal $TEMPORAL_CLI_VERSION" go_install "$temporal_bin" "github.com/temporalio/cli/cmd/temporal@$TEMPORAL_CLI_VERSION"
fi

# The real Temporal server and its SQL schema tool, from the go.temporal.io/server module (its go.mod has no replace
# directive, so go install works), with the module's PostgreSQL schema files next to them: temporal-sql-tool applies
# schema/postgresql/v12/{temporal,visibility}/versioned the documented way.
build_temporal_server() { # version, dest dir
  local v="$1" dest="$2" src
  rm -rf "$dest.part" && mkdir -p "$dest.part/schema"
  go_install "$dest.part/server" "go.temporal.io/server/cmd/server@$v"
  go_install "$dest.part/sql" "go.temporal.io/server/cmd/tools/sql@$v"
  mv "$dest.part/server" "$dest.part/temporal-server" && mv "$dest.part/sql" "$dest.part/temporal-sql-tool"
  src="$(go mod download -json "go.temporal.io/server@$v" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  cp -r "$src/schema/postgresql" "$dest.part/schema/" && chmod -R u+w "$dest.part/schema"
  rm -rf "$dest" && mv "$dest.part" "$dest"
}
if ! want temporal-server; then :; elif [[ -x "$temporal_server_dir/temporal-server" && -x "$temporal_server_dir/temporal-sql-tool" && -d "$temporal_server_dir/schema/postgresql" ]]; then
  log "temporal-server $TEMPORAL_SERVER_VERSION cached"
else
  timed "temporal-server + temporal-sql-tool $TEMPORAL_SERVER_VERSION" build_temporal_server "$TEMPORAL_SERVER_VERSION" "$temporal_server_dir"
fi

# The Temporal UI's server (temporalio/ui-server, the Go module inside the temporalio/ui image) with its template config.
build_temporal_ui() { # version, dest dir
  local v="$1" dest="$2" src
  rm -rf "$dest.part" && mkdir -p "$dest.part/config"
  go_install "$dest.part/server" "github.com/temporalio/ui-server/v2/cmd/server@$v"
  mv "$dest.part/server" "$dest.part/ui-server"
  src="$(go mod download -json "github.com/temporalio/ui-server/v2@$v" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  cp "$src/config/docker.yaml" "$dest.part/config/" && chmod u+w "$dest.part/config/docker.yaml"
  rm -rf "$dest" && mv "$dest.part" "$dest"
}
if ! want temporal-ui; then :; elif [[ -x "$temporal_ui_dir/ui-server" && -f "$temporal_ui_dir/config/docker.yaml" ]]; then
  log "temporal-ui $TEMPORAL_UI_VERSION cached"
else
  timed "temporal-ui $TEMPORAL_UI_VERSION" build_temporal_ui "$TEMPORAL_UI_VERSION" "$temporal_ui_dir"
fi

if ! want minio; then :; elif [[ -x "$minio_bin" ]]; then log "minio $MINIO_VERSION cached"; else
  mkdir -p "$(dirname "$minio_bin")"
  timed "minio $MINIO_VERSION" go_install "$minio_bin" "github.com/minio/minio@$MINIO_VERSION"
fi

# etcd's own module go.mod files carry replace directives, so `go install` refuses them; a tiny module of our own
# that requires server, etcdctl and etcdutl at one version builds them from the module proxy.
build_etcd() { # version, dest dir
  local v="$1" dest="$2" tmp
  tmp="$(mktemp -d "$CACHE/.build.XXXXXX")"
  (
    cd "$tmp"
    go mod init lifeboat.local/etcd-build >/dev/null 2>&1
    GOFLAGS=-mod=mod go get "go.etcd.io/etcd/server/v3@$v" "go.etcd.io/etcd/etcdctl/v3@$v" "go.etcd.io/etcd/etcdutl/v3@$v" >/dev/null 2>&1
    mkdir -p out
    for pkg in server etcdctl etcdutl; do
      name=$pkg; [[ $pkg == server ]] && name=etcd
      GOFLAGS="-mod=mod -buildvcs=false" go build -o "out/$name" "go.etcd.io/etcd/$pkg/v3"
    done
  )
  rm -rf "$dest.part" && mv "$tmp/out" "$dest.part" && mv "$dest.part" "$dest"
  rm -rf "$tmp"
}
for pair in "$ETCD36_VERSION:$etcd36_dir" "$ETCD35_VERSION:$etcd35_dir"; do
  v="${pair%%:*}"; d="${pair#*:}"
  if ! want etcd; then :; elif [[ -x "$d/etcd" && -x "$d/etcdctl" && -x "$d/etcdutl" ]]; then log "etcd $v cached"; else
    timed "etcd $v" build_etcd "$v" "$d"
  fi
done

# kube-apiserver, kube-scheduler and kube-controller-manager from the k8s.io/kubernetes module: its go.mod requires
# the staging modules (k8s.io/api, ...) at v0.0.0 and maps them to ./staging with replace directives, which a
# dependent module ignores. Our go.mod maps each one to its published v0.<minor>.<patch>, read from the kubernetes
# go.mod itself so the list never goes stale. Only the binaries missing from the kube dir are built (and added).
# The kubelet too (the sandbox nodes run a real one); its version is stamped in, or it reports v0.0.0-master.
kube_binaries=(kube-apiserver kube-scheduler kube-controller-manager kubelet)
build_kube() { # version, dest dir, binaries...
  local v="$1" dest="$2" tmp staging_version gomod b
  shift 2
  staging_version="v0.${v#v1.}"
  tmp="$(mktemp -d "$CACHE/.build.XXXXXX")"
  (
    cd "$tmp"
    gomod="$(go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
    go mod init lifeboat.local/kube-build >/dev/null 2>&1
    {
      echo "require k8s.io/kubernetes $v"
      grep -E '^[[:space:]]*k8s\.io/[a-z0-9-]+ v0\.0\.0([[:space:]]|$)' "$gomod" | awk -v sv="$staging_version" '{print "replace " $1 " => " $1 " " sv}' | sort -u
    } >> go.mod
    for b in "$@"; do GOFLAGS=-mod=mod go get "k8s.io/kubernetes/cmd/$b@$v" >/dev/null 2>&1 || true; done
    mkdir -p out
    for b in "$@"; do
      ldflags=""; [[ $b == kubelet ]] && ldflags="-X k8s.io/component-base/version.gitVersion=$v"
      GOFLAGS="-mod=mod -buildvcs=false" go build -ldflags "$ldflags" -o "out/$b" "k8s.io/kubernetes/cmd/$b"
    done
  )
  mkdir -p "$dest"
  for b in "$@"; do mv "$tmp/out/$b" "$dest/$b.part" && mv "$dest/$b.part" "$dest/$b"; done
  rm -rf "$tmp"
}
missing_kube=()
for b in "${kube_binaries[@]}"; do [[ -x "$kube_dir/$b" ]] || missing_kube+=("$b"); done
if ! want kube; then :; elif ((${#missing_kube[@]} == 0)); then log "${kube_binaries[*]} $KUBE_VERSION cached"; else
  timed "${missing_kube[*]} $KUBE_VERSION" build_kube "$KUBE_VERSION" "$kube_dir" "${missing_kube[@]}"
fi

if ! want crictl; then :; elif [[ -x "$crictl_bin" ]]; then log "crictl $CRICTL_VERSION cached"; else
  mkdir -p "$(dirname "$crictl_bin")"
  timed "crictl $CRICTL_VERSION" go_install "$crictl_bin" "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
fi

# The pause container of every sandbox pod: a static binary, so its image needs no libc.
if ! want pause; then :; elif [[ -x "$pause_bin" ]]; then log "pause $PAUSE_VERSION cached"; else
  mkdir -p "$(dirname "$pause_bin")"
  timed "pause $PAUSE_VERSION" env CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -ldflags "-s -w" -o "$pause_bin.part" "$(cd "$(dirname "$0")" && pwd)/pause/main.go"
  mv "$pause_bin.part" "$pause_bin"
fi

if ((${#timings[@]})); then log "cold build times: ${timings[*]}"; else log "everything was cached"; fi
print_env > "$CACHE/env"
log "server paths written to $CACHE/env"
