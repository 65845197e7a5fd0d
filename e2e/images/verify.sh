#!/usr/bin/env bash
# Checks the node images e2e/images.sh builds by running them with podman, as the cluster will:
#   pause     stays up, reaps the orphans it inherits as PID 1, exits 0 on SIGTERM
#   redis     as the operator runs it (its config file mounted read-only, password, cluster mode,
#             uid 999, read-only root, no capabilities): the readiness probe's command passes and
#             a client from the host gets PONG and cluster info
#   postgres  makes its database cluster on an empty volume, then psql from the host logs in
#             with the password to POSTGRES_DB over TCP; a restart keeps the data
#   shell     /bin/sh runs the commands local-path-provisioner's helper pods run
# Ports are published on 127.0.0.1 only, on free ports. Needs redis-cli and psql on the host.
#
#   e2e/images/verify.sh
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
run=(podman run --runtime "${CHANNELWORKS_OCI_RUNTIME:-runc}"
  --ulimit nofile=20000:20000 --ulimit nproc=32768:32768)
work="$(mktemp -d)"
containers=()
cleanup() {
  ((${#containers[@]})) && podman rm --force --time 0 "${containers[@]}" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

log() { printf '[verify] %s\n' "$*"; }
fail() {
  printf '[verify] FAIL: %s\n' "$*" >&2
  exit 1
}
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_for() {
  # wait_for DESCRIPTION COMMAND...: up to 30 s for COMMAND to succeed.
  local description="$1" deadline=$((SECONDS + 30))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "$description: not within 30 s"
    sleep 0.2
  done
}
start() {
  # start NAME podman-run-arguments...: a detached container, removed at the end. Not in a
  # subshell: the list of containers to remove is this shell's.
  local name="$1"
  shift
  containers+=("$name")
  "${run[@]}" --detach --name "$name" "$@" >/dev/null
}

# --- pause ---------------------------------------------------------------------------------------
pause="channelworks-verify-pause-$$"
start "$pause" --read-only --cap-drop ALL localhost/channelworks/pause:3.10
# An orphan for the pause process: a shell in its PID namespace starts `sleep` and exits, so the
# sleep is re-parented to PID 1, the pause process, which must reap it when it ends.
in_pause_pid_namespace() {
  "${run[@]}" --rm --pid "container:$pause" localhost/channelworks/base:bookworm-python3 "$@"
}
in_pause_pid_namespace sh -c 'sleep 0.5 & exit 0'
orphan_ended() { ! in_pause_pid_namespace sh -c 'grep -qx sleep /proc/[0-9]*/comm'; }
wait_for "the orphaned sleep ended" orphan_ended
zombies="$(in_pause_pid_namespace sh -c "grep -l '^State:[[:space:]]*Z' /proc/[0-9]*/status | wc -l")"
[[ "$zombies" == 0 ]] || fail "pause left $zombies zombie(s) in its PID namespace"
[[ "$(podman inspect --format '{{.State.Running}}' "$pause")" == true ]] || fail "pause is not running"
podman kill --signal TERM "$pause" >/dev/null
pause_stopped() { [[ "$(podman inspect --format '{{.State.Running}}' "$pause")" == false ]]; }
wait_for "pause exits on SIGTERM" pause_stopped
code="$(podman inspect --format '{{.State.ExitCode}}' "$pause")"
[[ "$code" == 0 ]] || fail "pause exited with $code on SIGTERM"
log "pause: up, no zombies, exit 0 on SIGTERM"

# --- redis, as the operator's StatefulSet runs it ------------------------------------------------
mkdir -p "$work/redis-config" "$work/redis-data"
"$repo_root/.venv/bin/python" -c '
import sys
from channelworks_operator.builders import redis
sys.stdout.write(redis._BASE_CONFIG + redis._CLUSTER_CONFIG)' >"$work/redis-config/redis.conf"
chmod 755 "$work/redis-config" && chmod 644 "$work/redis-config/redis.conf"
chown 999:999 "$work/redis-data"
port="$(free_port)"
redis="channelworks-verify-redis-$$"
start "$redis" --read-only --user 999:999 --cap-drop ALL --security-opt no-new-privileges \
  --env REDIS_PASSWORD=verify-secret --env POD_IP=127.0.0.1 \
  --volume "$work/redis-config:/etc/redis:ro" --volume "$work/redis-data:/data" \
  --publish "127.0.0.1:$port:6379" localhost/channelworks/redis:7.0-bookworm \
  redis-server /etc/redis/redis.conf --requirepass verify-secret --masterauth verify-secret \
  --cluster-announce-ip 127.0.0.1
probe='redis-cli -h 127.0.0.1 -a "$REDIS_PASSWORD" --no-auth-warning ping | grep -q PONG'
wait_for "the operator's readiness probe passes in the redis container" podman exec "$redis" sh -c "$probe"
answer="$(redis-cli -p "$port" -a verify-secret --no-auth-warning ping)"
[[ "$answer" == PONG ]] || fail "redis answered '$answer' to PING"
redis-cli -p "$port" -a verify-secret --no-auth-warning cluster info | grep -q '^cluster_known_nodes:1' \
  || fail "redis is not in cluster mode"
[[ -f "$work/redis-data/nodes.conf" ]] || fail "redis did not write /data/nodes.conf"
log "redis: PONG from the host, cluster mode, probe passes, uid 999 on a read-only root"

# --- postgres --------------------------------------------------------------------------------------
# Two folders as examples/chat/k8s/postgres.yaml's emptyDirs give them: owned by root, mode 0777.
mkdir -p "$work/postgres-data" "$work/postgres-run"
chmod 0777 "$work/postgres-data" "$work/postgres-run"
port="$(free_port)"
postgres_args=(--read-only --cap-drop ALL --security-opt no-new-privileges
  --env POSTGRES_USER=chat --env POSTGRES_PASSWORD=verify-secret --env POSTGRES_DB=chatdb
  --volume "$work/postgres-data:/var/lib/postgresql/data"
  --volume "$work/postgres-run:/var/run/postgresql" --publish "127.0.0.1:$port:5432"
  localhost/channelworks/postgres:15-bookworm)
postgres="channelworks-verify-postgres-$$"
start "$postgres" "${postgres_args[@]}"
psql_host() {
  PGPASSWORD="${PGPASSWORD:-verify-secret}" psql --no-psqlrc --host 127.0.0.1 --port "$port" \
    --username chat --dbname chatdb --tuples-only --no-align "$@"
}
wait_for "postgres accepts a password login from the host" psql_host --command 'SELECT 1'
podman exec "$postgres" sh -c 'pg_isready -q -h 127.0.0.1 -U "$POSTGRES_USER" -d "$POSTGRES_DB"' \
  || fail "postgres.yaml's readiness probe fails"
psql_host --command 'CREATE TABLE rooms (name text); INSERT INTO rooms VALUES ($$lobby$$)' >/dev/null
PGPASSWORD=wrong psql_host --command 'SELECT 1' >/dev/null 2>&1 && fail "postgres let a wrong password in"
podman restart --time 10 "$postgres" >/dev/null
wait_for "postgres comes back after a restart" psql_host --command 'SELECT 1'
[[ "$(psql_host --command 'SELECT name FROM rooms')" == lobby ]] || fail "the data did not survive a restart"
log "postgres: password login to chatdb from the host, wrong password refused, data kept over a restart"

# --- shell for local-path-provisioner's helper pods ----------------------------------------------
"${run[@]}" --rm localhost/channelworks/base:bookworm-python3 \
  /bin/sh -c 'set -e; mkdir -m 0777 -p /tmp/pv/x; rm -rf /tmp/pv' || fail "the shell image"
log "shell: /bin/sh, mkdir, rm"
log "all node images pass"
