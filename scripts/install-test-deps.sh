#!/usr/bin/env bash
# Installs what the checks and tests need, and only what is missing, so a second run is quick:
#   1. Debian packages: redis-server, redis-tools (real Redis and cluster tests), chromium (the
#      browser test of the chat example), podman, buildah, runc, debootstrap (the image tests
#      build and run the images: scripts/build-images.sh), postgresql (the chat example's cluster
#      settings run against a private PostgreSQL), containerd, the CNI plugins
#      (containernetworking-plugins), iptables, ipset, conntrack and iproute2 (the e2e suite's real
#      node: e2e/node.sh runs containerd with runc, kube-proxy and kube-router's NetworkPolicy
#      controller); `apt-get update` runs once, and only when one is missing.
#   2. uv (pinned), when no `uv` is on PATH.
#   3. The workspace venv (.venv) from uv.lock: `uv sync --frozen`.
#   4. The Kubernetes test binaries, when tools/kube/build-binaries.sh exists (see below): the
#      control plane, and the real node's kubelet, kube-proxy, CoreDNS, kube-router,
#      local-path-provisioner, Prometheus server and kube-state-metrics.
#   5. promtool from its Go module (tests/chart/build-promtool.sh, cached), for `promtool check
#      rules` and the alert unit tests; if it cannot be built the chart tests fall back to a
#      structural check of the rules and say so.
#   6. The Prometheus Operator's CRDs, from its Go module into the module cache (the e2e node
#      has no network).
#
#   scripts/install-test-deps.sh                 # all of the above
#   scripts/install-test-deps.sh --no-go-builds  # all but 4 and 5 (scripts/test.sh runs those
#                                                # in the background, beside the first tests)
# Non-interactive: works under CI=true with no terminal, from a fresh clone, with no shell state.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
apt_packages=(redis-server redis-tools chromium podman buildah runc debootstrap postgresql
  containerd containernetworking-plugins iptables ipset conntrack iproute2)
uv_version="0.13.9"
go_builds=true
case "${1:-}" in
  "") ;;
  --no-go-builds) go_builds=false ;;
  *)
    echo "usage: $0 [--no-go-builds]" >&2
    exit 2
    ;;
esac

log() { printf '[install-test-deps] %s\n' "$*"; }

as_root() {
  if [[ "$(id -u)" -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n "$@"
  else
    log "need root (or sudo) to run: $*" >&2
    return 1
  fi
}

install_apt_packages() {
  local missing=() package
  for package in "${apt_packages[@]}"; do
    if [[ "$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null)" != "install ok installed" ]]; then
      missing+=("$package")
    fi
  done
  if ((${#missing[@]} == 0)); then
    log "apt packages present: ${apt_packages[*]}"
    return
  fi
  log "installing apt packages: ${missing[*]}"
  as_root apt-get update -q
  as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
}

uv_command=()

install_uv() {
  if command -v uv >/dev/null 2>&1; then
    uv_command=(uv)
    log "uv present: $(uv --version)"
    return
  fi
  log "installing uv==${uv_version} with pip"
  local pip=(python3 -m pip install --quiet --disable-pip-version-check)
  if ! "${pip[@]}" "uv==${uv_version}"; then
    log "retrying as a user install (the system Python is externally managed)"
    "${pip[@]}" --user --break-system-packages "uv==${uv_version}"
  fi
  if command -v uv >/dev/null 2>&1; then
    uv_command=(uv)
  else
    uv_command=(python3 -m uv)  # pip's scripts folder is not on PATH: the package runs it too
  fi
}

sync_venv() {
  log "uv sync --frozen (workspace venv in .venv)"
  (cd "$repo_root" && "${uv_command[@]}" sync --frozen)
}

# --- Kubernetes test binaries -----------------------------------------------------------------
# The operator's tests run against a real kube-apiserver with etcd, the e2e suite against a real
# node. tools/kube/build-binaries.sh builds and caches those binaries (everything, by default:
# also the Prometheus server, through tests/chart/build-promtool.sh); this step only calls it,
# when it exists, so this script stays the one entry point for test dependencies.
build_kube_binaries() {
  local script="$repo_root/tools/kube/build-binaries.sh"
  if [[ -f "$script" ]]; then
    log "building Kubernetes test binaries: tools/kube/build-binaries.sh"
    bash "$script"
  else
    log "tools/kube/build-binaries.sh not present: no Kubernetes binaries to build"
  fi
}

build_promtool() {
  log "building promtool: tests/chart/build-promtool.sh"
  if ! bash "$repo_root/tests/chart/build-promtool.sh"; then
    log "WARNING: promtool could not be built; the alert-rule tests use their structural check"
  fi
}

# The e2e suite runs inside the node's network namespace, which reaches nothing outside: the
# Prometheus Operator's CRDs it installs come from that project's Go module, fetched here into
# the module cache (the version is pinned once, in tests/chart/prometheus_operator.py).
fetch_monitoring_crds() {
  log "fetching the Prometheus Operator CRDs into the Go module cache"
  (cd "$repo_root" && .venv/bin/python -c \
    'from tests.chart import prometheus_operator; print(prometheus_operator.crd_dir())')
}

install_apt_packages
install_uv
sync_venv
if "$go_builds"; then
  build_kube_binaries
  build_promtool
fi
fetch_monitoring_crds
log "done"
