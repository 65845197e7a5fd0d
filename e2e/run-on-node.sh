#!/usr/bin/env bash
# Runs the end-to-end suite (e2e/) on a real single-node cluster on this machine: builds the
# images (e2e/images.sh, cached), brings the node up with them imported into its containerd
# (e2e/node.sh up --images), runs pytest inside the node's namespaces (e2e/node.sh exec), where
# Services answer on their ClusterIPs and cluster DNS names, then takes the node down. Needs root
# and what scripts/install-test-deps.sh installs. See e2e/README.md.
#
#   e2e/run-on-node.sh                 # everything, then the node is removed
#   KEEP_NODE=1 e2e/run-on-node.sh     # keep the node afterwards (e2e/node.sh exec -- kubectl ...)
#   e2e/run-on-node.sh -k rollout -x   # further arguments go to pytest
#
# Environment: CHANNELWORKS_E2E_IMAGES (image archive folder, default build/node-images),
# KEEP_NODE, SKIP_IMAGES=1 (use the archives already there), and what e2e/conftest.py,
# e2e/images.sh and e2e/node.sh read.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
images="${CHANNELWORKS_E2E_IMAGES:-$repo_root/build/node-images}"
log() { printf '[e2e/run-on-node] %s\n' "$*"; }

[[ -x "$repo_root/.venv/bin/python" ]] || { echo "error: .venv is missing: run scripts/install-test-deps.sh" >&2; exit 1; }
cd "$repo_root"
if [[ "${SKIP_IMAGES:-}" != "1" ]]; then
  log "building the images into $images"
  bash e2e/images.sh "$images"
fi
if [[ "${KEEP_NODE:-}" != "1" ]]; then
  trap 'log "taking the node down"; bash e2e/node.sh down || true' EXIT
fi
if bash e2e/node.sh status >/dev/null 2>&1; then
  log "the node is up: importing the images"
  bash e2e/node.sh import "$images"
else
  log "bringing the node up"
  bash e2e/node.sh up --images "$images"
fi
log "running the suite inside the node's namespaces"
bash e2e/node.sh exec -- "$repo_root/.venv/bin/python" -m pytest e2e -p no:cacheprovider \
  --timeout=900 -ra "$@"
