#!/usr/bin/env bash
# Build promtool (Prometheus' rule checker, for tests/chart) and the Prometheus server (scraped by
# the e2e suite's real node) from their Go module, the way tools/kube/build-binaries.sh builds
# helm: nothing prebuilt is downloaded, the binaries are cached outside the repository and a stamp
# file per binary makes a second run a no-op (tools/go-build.sh).
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
# Both are built without the web UI (the module does not carry the compiled UI assets; only the
# HTTP API is used) and, through Prometheus' own build tags (plugins/plugin_*.go), with only the
# kubernetes service discovery beside those every build has (file, http, static): promtool only
# checks and unit-tests rules, the e2e suite's generated configuration only uses kubernetes_sd.
# One `go install` builds the two commands, so the packages they share are compiled once, and the
# cloud providers' SDKs (AWS, Azure, GCE, ...) are not compiled at all. Measured on the 2-core CI
# machine from empty Go caches: see docs/testing-control-plane.md (before: promtool with every
# discovery 1686 s at load average 20-30, the server then 12 s).
set -euo pipefail

PROMETHEUS_MODULE_VERSION="v0.316.0"
PROMETHEUS_VERSION="3.16.0"
BUILD_TAGS="remove_all_sd,enable_kubernetes_sd"
MODULE="github.com/prometheus/prometheus"

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/go-build.sh
source "$HERE/../../tools/go-build.sh"
BIN="$GO_BUILD_CACHE/promtool/$PROMETHEUS_MODULE_VERSION/bin"

if [[ "${1:-}" == "--print-dir" ]]; then
    echo "$BIN"
    exit 0
fi

go_build_stamped "promtool, prometheus $PROMETHEUS_MODULE_VERSION" \
    "$BIN" "$PROMETHEUS_MODULE_VERSION $BUILD_TAGS" promtool prometheus -- \
    go_build_install "$BIN" -tags "$BUILD_TAGS" \
    -ldflags="-s -w -X github.com/prometheus/common/version.Version=$PROMETHEUS_VERSION" \
    "$MODULE/cmd/promtool@$PROMETHEUS_MODULE_VERSION" "$MODULE/cmd/prometheus@$PROMETHEUS_MODULE_VERSION"
