#!/usr/bin/env bash
# Build promtool (Prometheus' rule checker) from its Go module for tests/chart, the way
# tools/kube/build-binaries.sh builds helm: nothing prebuilt is downloaded, the binary is cached
# outside the repository and a stamp file makes a second run a no-op.
#
#   ${CHANNELWORKS_CACHE:-$HOME/.cache/channelworks}/promtool/<version>/bin/promtool
#
# Usage: tests/chart/build-promtool.sh [--print-dir]
#   --print-dir  print the bin directory and exit (builds nothing)
# Environment: CHANNELWORKS_CACHE (cache root), BUILD_JOBS (go build -p, default: nproc, max 2).
#
# The Prometheus Go module is versioned v0.<major><minor>.<patch>: v0.316.0 is Prometheus 3.16.0.
# Its go.mod has no replace directives, so `go install pkg@version` builds it directly.
set -euo pipefail

PROMETHEUS_MODULE_VERSION="v0.316.0"

CACHE_ROOT="${CHANNELWORKS_CACHE:-$HOME/.cache/channelworks}"
BIN="$CACHE_ROOT/promtool/$PROMETHEUS_MODULE_VERSION/bin"

if [[ "${1:-}" == "--print-dir" ]]; then
    echo "$BIN"
    exit 0
fi

command -v go >/dev/null || { echo "error: the Go toolchain ('go') is required" >&2; exit 1; }
cpus="$(nproc 2>/dev/null || echo 2)"
JOBS="${BUILD_JOBS:-$((cpus < 2 ? cpus : 2))}"
mkdir -p "$BIN"

if [[ -x "$BIN/promtool" && -f "$BIN/.stamp-promtool" &&
    "$(cat "$BIN/.stamp-promtool")" == "$PROMETHEUS_MODULE_VERSION" ]]; then
    echo "promtool $PROMETHEUS_MODULE_VERSION: cached in $BIN"
    exit 0
fi

start=$SECONDS
echo "promtool $PROMETHEUS_MODULE_VERSION: building into $BIN ($(go version), -p $JOBS)"
CGO_ENABLED=0 GOBIN="$BIN" go install -p "$JOBS" -trimpath -ldflags="-s -w" \
    "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION"
echo "$PROMETHEUS_MODULE_VERSION" >"$BIN/.stamp-promtool"
echo "promtool $PROMETHEUS_MODULE_VERSION: done in $((SECONDS - start))s"
