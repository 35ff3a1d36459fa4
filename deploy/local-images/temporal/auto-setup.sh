#!/bin/bash
# What temporalio/auto-setup does, for PostgreSQL: wait for the database, create and migrate Temporal's two schemas
# with temporal-sql-tool (the documented way; a no-op when they are current), write the server's config from the
# environment, start the server, and register the `default` namespace once the frontend answers.
set -euo pipefail
: "${POSTGRES_SEEDS:?set POSTGRES_SEEDS (the PostgreSQL host)}" "${POSTGRES_USER:?set POSTGRES_USER}" "${POSTGRES_PWD:?set POSTGRES_PWD}"
DB="${DB:-postgres12}"
DB_PORT="${DB_PORT:-5432}"
DBNAME="${DBNAME:-temporal}"
VISIBILITY_DBNAME="${VISIBILITY_DBNAME:-temporal_visibility}"
DEFAULT_NAMESPACE="${DEFAULT_NAMESPACE:-default}"
DEFAULT_NAMESPACE_RETENTION="${DEFAULT_NAMESPACE_RETENTION:-24h}"
NUM_HISTORY_SHARDS="${NUM_HISTORY_SHARDS:-4}"
# The container's own address: the frontend binds there (as auto-setup does), and TEMPORAL_ADDRESS names it.
BIND_ON_IP="${BIND_ON_IP:-$(hostname -i | awk '{print $1}')}"
TEMPORAL_ADDRESS="${TEMPORAL_ADDRESS:-$BIND_ON_IP:7233}"
export SQL_PASSWORD="$POSTGRES_PWD" # temporal-sql-tool reads it here, not from its command line (where ps shows it)

sql() { temporal-sql-tool --plugin "$DB" --ep "$POSTGRES_SEEDS" -p "$DB_PORT" -u "$POSTGRES_USER" "$@"; }

for i in $(seq 1 60); do
  # The first statement doubles as the wait: it fails with "connection refused" until PostgreSQL is up.
  if err="$(sql --db "$DBNAME" create-database 2>&1)" || grep -q 'already exists' <<<"$err"; then break; fi
  echo "auto-setup: waiting for PostgreSQL at $POSTGRES_SEEDS:$DB_PORT ($(tail -n 1 <<<"$err"))"
  sleep 2
done
for pair in "$DBNAME:temporal" "$VISIBILITY_DBNAME:visibility"; do
  db="${pair%%:*}" schema="${pair#*:}"
  [[ "$db" == "$DBNAME" ]] || sql --db "$db" create-database 2>/dev/null || true # or already there
  # setup-schema -v 0.0 records the base version once; update-schema then applies every versioned step not applied.
  sql --db "$db" setup-schema -v 0.0 2>/dev/null || true
  # Its log (every statement, at DEBUG) only when it fails.
  sql --db "$db" update-schema -d "/etc/temporal/schema/postgresql/v12/$schema/versioned" > /tmp/update-schema.log 2>&1 || {
    cat /tmp/update-schema.log >&2
    exit 1
  }
  echo "auto-setup: schema of $db is current ($(grep -o 'Schema updated from [0-9.]* to [0-9.]*' /tmp/update-schema.log | tail -n 1 || echo 'no update needed'))"
done

store() { # name, database, connections
  cat <<YAML
    $1:
      sql:
        pluginName: "$DB"
        databaseName: "$2"
        connectAddr: "$POSTGRES_SEEDS:$DB_PORT"
        connectProtocol: tcp
        user: "$POSTGRES_USER"
        password: "$POSTGRES_PWD"
        maxConns: $3
        maxIdleConns: $3
        maxConnLifetime: 1h
YAML
}
service() { # name, grpc port, membership port, extra
  printf '  %s:\n    rpc:\n      grpcPort: %s\n      membershipPort: %s\n      bindOnIP: "%s"\n%s' "$1" "$2" "$3" "$BIND_ON_IP" "${4:-}"
}
umask 077 # the config holds the database password
{
  echo "log: {stdout: true, level: ${LOG_LEVEL:-warn}}"
  echo "persistence:"
  echo "  defaultStore: default"
  echo "  visibilityStore: visibility"
  echo "  numHistoryShards: $NUM_HISTORY_SHARDS"
  echo "  datastores:"
  store default "$DBNAME" 20
  store visibility "$VISIBILITY_DBNAME" 10
  echo "global: {membership: {maxJoinDuration: 30s, broadcastAddress: \"$BIND_ON_IP\"}}"
  echo "services:"
  service frontend 7233 6933 "      httpPort: 7243"$'\n'
  service history 7234 6934
  service matching 7235 6935
  service worker 7239 6939
  cat <<YAML
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active: {enabled: true, initialFailoverVersion: 1, rpcName: frontend, rpcAddress: "$BIND_ON_IP:7233"}
dcRedirectionPolicy: {policy: noop}
dynamicConfigClient: {filepath: /etc/temporal/config/dynamicconfig.yaml, pollInterval: 60s}
YAML
} > config/docker.yaml
# Updates (the recovery's approval) as the dev server has them on.
echo 'frontend.enableUpdateWorkflowExecution: [{value: true}]' > config/dynamicconfig.yaml

# The namespace, once the frontend answers; in the background so that the server below is PID 1 and gets the signals.
(
  for i in $(seq 1 120); do
    out="$(temporal operator namespace create --namespace "$DEFAULT_NAMESPACE" --retention "$DEFAULT_NAMESPACE_RETENTION" --address "$TEMPORAL_ADDRESS" 2>&1)" && {
      echo "auto-setup: registered namespace $DEFAULT_NAMESPACE"
      exit 0
    }
    if grep -qiE 'already (registered|exists)' <<<"$out"; then exit 0; fi
    sleep 2
  done
  echo "auto-setup: could not register namespace $DEFAULT_NAMESPACE: $out" >&2
) &
exec temporal-server --root /etc/temporal --config config --env docker --allow-no-auth start
