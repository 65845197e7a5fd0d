#!/usr/bin/env bash
# Run the end-to-end suite (e2e/) on a local kind cluster. Needs Docker (a running daemon), kind,
# kubectl and helm on PATH (helm may also be the one tools/kube/build-binaries.sh built), and the
# workspace venv (scripts/install-test-deps.sh). See e2e/README.md.
#
#   e2e/kind.sh                  # make (or reuse) the kind cluster, run the suite, delete the
#                                # cluster if this run made it
#   KEEP_CLUSTER=1 e2e/kind.sh   # keep the cluster afterwards (to look around)
#   e2e/kind.sh -k broadcast -x  # further arguments go to pytest
#
# Environment: CHANNELWORKS_E2E_KIND_CLUSTER (cluster name, default channelworks-e2e),
# KEEP_CLUSTER, and what e2e/conftest.py reads (CHANNELWORKS_E2E_TAG, ...).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cluster="${CHANNELWORKS_E2E_KIND_CLUSTER:-channelworks-e2e}"

log() { printf '[e2e/kind] %s\n' "$*"; }
fail() {
    printf '[e2e/kind] error: %s\n' "$*" >&2
    exit 1
}

for tool in docker kind kubectl; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool is not installed (needed: docker, kind, kubectl, helm)"
done
if ! command -v helm >/dev/null 2>&1; then
    helm_dir="$(bash "$repo_root/tools/kube/build-binaries.sh" --print-dirs | sed -n 2p)"
    [[ -x "$helm_dir/helm" ]] || fail "helm is not installed (or run tools/kube/build-binaries.sh)"
    export HELM="$helm_dir/helm"
fi
docker info >/dev/null 2>&1 || fail "the Docker daemon does not answer ('docker info' fails)"
[[ -x "$repo_root/.venv/bin/python" ]] || fail ".venv is missing: run scripts/install-test-deps.sh"

created=false
kubeconfig="$(mktemp "${TMPDIR:-/tmp}/channelworks-e2e-kubeconfig.XXXXXX")"
cleanup() {
    rm -f "$kubeconfig"
    if $created && [[ "${KEEP_CLUSTER:-}" != "1" ]]; then
        log "deleting kind cluster $cluster"
        kind delete cluster --name "$cluster" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
    log "reusing kind cluster $cluster"
else
    log "creating kind cluster $cluster"
    kind create cluster --name "$cluster" --wait 180s
    created=true
fi
kind get kubeconfig --name "$cluster" >"$kubeconfig"

export CHANNELWORKS_E2E_KUBECONFIG="$kubeconfig"
export CHANNELWORKS_E2E_KIND_CLUSTER="$cluster"
cd "$repo_root"
# Building the four images is part of the first test's setup: allow it more than pytest's 300 s.
"$repo_root/.venv/bin/python" -m pytest e2e --timeout=3600 "$@"
