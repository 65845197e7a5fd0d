#!/usr/bin/env bash
# The README's first command: run the chat example on this machine, nothing else needed.
#
#   scripts/run-chat.sh                 # then open the URL it prints, in two browser windows
#   scripts/run-chat.sh --port 9000     # any further options go to `channelworks dev`
#
# 1. installs the workspace when needed: uv (pinned, with pip) if missing, then `uv sync --frozen`
#    (.venv from uv.lock; a second run only checks);
# 2. prepares the example's sqlite database in $CHANNELWORKS_STATE_DIR (default:
#    examples/chat/.state): migrations, the demo rooms and the users alice (staff) and bob;
# 3. runs `channelworks dev` for examples/chat — interface server, workers and the in-memory
#    channel layer in one command, no Redis — and prints the URL and the demo logins.
# Ctrl-C stops everything. Environment: PORT (8000), CHANNELWORKS_STATE_DIR.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
example="$repo_root/examples/chat"
uv_version="0.13.9"
port="${PORT:-8000}"
export CHANNELWORKS_STATE_DIR="${CHANNELWORKS_STATE_DIR:-$example/.state}"
export DJANGO_SETTINGS_MODULE="chat.settings"

log() { printf '[run-chat] %s\n' "$*"; }

uv_command=()
find_uv() {
  if command -v uv >/dev/null 2>&1; then
    uv_command=(uv)
  elif python3 -m uv --version >/dev/null 2>&1; then
    uv_command=(python3 -m uv)
  else
    log "installing uv==${uv_version} with pip"
    local pip=(python3 -m pip install --quiet --disable-pip-version-check)
    if ! "${pip[@]}" "uv==${uv_version}" 2>/dev/null; then
      # A system Python marked "externally managed" (Debian) takes a user install only.
      "${pip[@]}" --user --break-system-packages "uv==${uv_version}"
    fi
    if command -v uv >/dev/null 2>&1; then uv_command=(uv); else uv_command=(python3 -m uv); fi
  fi
}

find_uv
log "installing the workspace (uv sync --frozen)"
# --inexact: never removes packages added to .venv by hand.
(cd "$repo_root" && "${uv_command[@]}" sync --frozen --inexact --quiet)

python="$repo_root/.venv/bin/python"
mkdir -p "$CHANNELWORKS_STATE_DIR"
log "preparing the database in $CHANNELWORKS_STATE_DIR"
(cd "$example" && "$python" manage.py migrate --verbosity 0)
log "demo logins:"
(cd "$example" && "$python" manage.py seed_demo)

log "starting the chat example (Ctrl-C stops it)"
cd "$example"
# exec: Ctrl-C and SIGTERM go straight to `channelworks dev`, which stops every process it started.
exec "$repo_root/.venv/bin/channelworks" dev --project "$example" --port "$port" "$@"
