#!/usr/bin/env bash
# Build promtool (Prometheus' rule checker, for tests/chart) and the Prometheus server (scraped by
# the e2e suite's real node) from their Go module, the way tools/kube/build-binaries.sh builds
# helm: nothing prebuilt is downloaded, the binaries are cached outside the repository and a stamp
# file per binary makes a second run a no-op.
#
#   ${CHANNELWORKS_CACHE:-$HOME/.cache/channelworks}/promtool/<version>/bin/promtool
#   ${CHANNELWORKS_CACHE:-$HOME/.cache/channelworks}/promtool/<version>/bin/prometheus
#
# Usage: tests/chart/build-promtool.sh [--print-dir]
#   --print-dir  print the bin directory and exit (builds nothing)
# Environment: CHANNELWORKS_CACHE (cache root), BUILD_JOBS (go build -p, default: nproc, max 2).
#
# The Prometheus Go module is versioned v0.<major><minor>.<patch>: v0.316.0 is Prometheus 3.16.0.
# Its go.mod has no replace directives, so `go install pkg@version` builds it directly.
#
# The server is built without its web UI (the module does not carry the compiled UI assets; only
# the HTTP API is used) and, through Prometheus' own build tags, with only the kubernetes, file
# and http service discoveries (static_configs always work). Measured on the 2-core CI machine:
# promtool 1686 s from an empty build cache (an upper bound: load average 20-30, with a second,
# identical promtool build running beside it); the server then 12 s, as it shares every package
# but the discovery registrations with promtool.
set -euo pipefail

PROMETHEUS_MODULE_VERSION="v0.316.0"
PROMETHEUS_VERSION="3.16.0"
SERVER_BUILD_TAGS="remove_all_sd,enable_kubernetes_sd"

CACHE_ROOT="${CHANNELWORKS_CACHE:-$HOME/.cache/channelworks}"
BIN="$CACHE_ROOT/promtool/$PROMETHEUS_MODULE_VERSION/bin"
MODULE="github.com/prometheus/prometheus"

if [[ "${1:-}" == "--print-dir" ]]; then
    echo "$BIN"
    exit 0
fi

command -v go >/dev/null || { echo "error: the Go toolchain ('go') is required" >&2; exit 1; }
cpus="$(nproc 2>/dev/null || echo 2)"
JOBS="${BUILD_JOBS:-$((cpus < 2 ? cpus : 2))}"
mkdir -p "$BIN"

# built NAME STAMP: true when NAME was built with STAMP and the binary is still there.
built() {
    [[ -x "$BIN/$1" && -f "$BIN/.stamp-$1" && "$(cat "$BIN/.stamp-$1")" == "$2" ]]
}

# build NAME STAMP [go install flags...]: build cmd/NAME of the module into $BIN unless cached.
build() {
    local name="$1" stamp="$2"
    shift 2
    if built "$name" "$stamp"; then
        echo "$name $PROMETHEUS_MODULE_VERSION: cached in $BIN"
        return
    fi
    local start=$SECONDS
    echo "$name $PROMETHEUS_MODULE_VERSION: building into $BIN ($(go version), -p $JOBS)"
    CGO_ENABLED=0 GOBIN="$BIN" go install -p "$JOBS" -trimpath "$@" \
        "$MODULE/cmd/$name@$PROMETHEUS_MODULE_VERSION"
    echo "$stamp" >"$BIN/.stamp-$name"
    echo "$name $PROMETHEUS_MODULE_VERSION: done in $((SECONDS - start))s"
}

build promtool "$PROMETHEUS_MODULE_VERSION" -ldflags="-s -w"
build prometheus "$PROMETHEUS_MODULE_VERSION $SERVER_BUILD_TAGS" -tags "$SERVER_BUILD_TAGS" \
    -ldflags="-s -w -X github.com/prometheus/common/version.Version=$PROMETHEUS_VERSION"
