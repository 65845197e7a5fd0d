#!/usr/bin/env bash
# Build Centrifugo (the peer bench/ws.py measures Channelworks against, issue 15) from its Go
# module with the local Go toolchain, the way tools/kube/build-binaries.sh builds the Kubernetes
# binaries: nothing prebuilt is downloaded, the binary is cached outside the repository and a stamp
# file makes a second run a no-op (tools/go-build.sh).
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

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/go-build.sh
source "$HERE/../../tools/go-build.sh"
BIN="$GO_BUILD_CACHE/centrifugo/$CENTRIFUGO_VERSION/bin"

if [[ "${1:-}" == "--print-path" ]]; then
    echo "$BIN/centrifugo"
    exit 0
fi
if [[ -n "${1:-}" ]]; then
    echo "usage: $0 [--print-path]" >&2
    exit 2
fi

go_build_stamped "centrifugo $CENTRIFUGO_VERSION" "$BIN" "$CENTRIFUGO_VERSION" centrifugo -- \
    go_build_install "$BIN" -ldflags="-s -w -X $MODULE/internal/build.Version=${CENTRIFUGO_VERSION#v}" \
    "$MODULE@$CENTRIFUGO_VERSION"
