#!/usr/bin/env bash
# Build Centrifugo (the peer bench/ws.py measures Channelworks against, issue 15) from its Go
# module with the local Go toolchain, the way tools/kube/build-binaries.sh builds the Kubernetes
# binaries: nothing prebuilt is downloaded, the binary is cached outside the repository and a stamp
# file makes a second run a no-op.
#
#   ${CHANNELWORKS_CACHE:-$HOME/.cache/channelworks}/centrifugo/<version>/bin/centrifugo
#
# Usage: bench/centrifugo/build.sh [--print-path]
#   --print-path  print the binary's path and exit (builds nothing)
# Environment: CHANNELWORKS_CACHE (cache root), BUILD_JOBS (go build -p, default: nproc, max 2).
#
# Centrifugo's go.mod has no replace directives, so `go install module@version` builds it directly.
set -euo pipefail

CENTRIFUGO_VERSION="v6.9.1"
MODULE="github.com/centrifugal/centrifugo/v6"

CACHE_ROOT="${CHANNELWORKS_CACHE:-$HOME/.cache/channelworks}"
BIN="$CACHE_ROOT/centrifugo/$CENTRIFUGO_VERSION/bin"

if [[ "${1:-}" == "--print-path" ]]; then
    echo "$BIN/centrifugo"
    exit 0
fi
if [[ -n "${1:-}" ]]; then
    echo "usage: $0 [--print-path]" >&2
    exit 2
fi

if [[ -x "$BIN/centrifugo" && -f "$BIN/.stamp-centrifugo" \
    && "$(cat "$BIN/.stamp-centrifugo")" == "$CENTRIFUGO_VERSION" ]]; then
    echo "centrifugo $CENTRIFUGO_VERSION: cached in $BIN"
    exit 0
fi

command -v go >/dev/null || { echo "error: the Go toolchain ('go') is required" >&2; exit 1; }
cpus="$(nproc 2>/dev/null || echo 2)"
JOBS="${BUILD_JOBS:-$((cpus < 2 ? cpus : 2))}"
mkdir -p "$BIN"
start=$SECONDS
echo "centrifugo $CENTRIFUGO_VERSION: building into $BIN ($(go version), -p $JOBS)"
CGO_ENABLED=0 GOBIN="$BIN" go install -p "$JOBS" -trimpath \
    -ldflags="-s -w -X $MODULE/internal/build.Version=${CENTRIFUGO_VERSION#v}" \
    "$MODULE@$CENTRIFUGO_VERSION"
echo "$CENTRIFUGO_VERSION" >"$BIN/.stamp-centrifugo"
echo "centrifugo $CENTRIFUGO_VERSION: done in $((SECONDS - start))s"
