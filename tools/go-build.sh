# Shared by the scripts that build Go commands into the cache (tools/kube/build-binaries.sh,
# tests/chart/build-promtool.sh, bench/centrifugo/build.sh): source it, do not run it.
#
# Each built binary sits in a bin directory of the cache beside a stamp file `.stamp-<name>`
# holding one line: what it was built from (the version, plus build tags or hashes when they
# change the binary). A later run skips a binary whose stamp still says the same and whose file
# is still there, so a second run builds nothing.
#
#   GO_BUILD_CACHE            the cache root: ${CHANNELWORKS_CACHE:-$HOME/.cache/channelworks}
#   GO_BUILD_FLAGS            -p <jobs> -trimpath; jobs: BUILD_JOBS, default nproc, at most 2
#   go_build_log TEXT...      one progress line, prefixed with GO_BUILD_LOG_NAME when it is set
#   go_build_require_go       fail with a clear error when the Go toolchain is missing
#   go_build_cached DIR STAMP NAME...    true when every NAME in DIR is there and stamped STAMP
#   go_build_stamp DIR STAMP NAME...     record that every NAME in DIR was built as STAMP
#   go_build_scratch_module DIR NAME     an empty main module in DIR/NAME (for modules whose
#                                        go.mod replaces siblings, which `go install` refuses)
#   go_build_stamped LABEL DIR STAMP NAME... -- COMMAND...
#       unless go_build_cached DIR STAMP NAME...: run COMMAND (it puts the NAMEs into DIR), then
#       stamp them; says "LABEL: cached in DIR" or "LABEL: building ..." and "LABEL: done in Ns"
#   go_build_install DIR GO-INSTALL-ARGS...  `go install` with GO_BUILD_FLAGS into DIR (GOBIN)
#
# cgo is off (CGO_ENABLED=0, exported): static binaries, no C toolchain needed.

GO_BUILD_CACHE="${CHANNELWORKS_CACHE:-$HOME/.cache/channelworks}"
_go_build_cpus="$(nproc 2>/dev/null || echo 2)"
GO_BUILD_JOBS="${BUILD_JOBS:-$((_go_build_cpus < 2 ? _go_build_cpus : 2))}"
GO_BUILD_FLAGS=(-p "$GO_BUILD_JOBS" -trimpath)
unset _go_build_cpus
export CGO_ENABLED=0

go_build_log() {
    if [[ -n "${GO_BUILD_LOG_NAME:-}" ]]; then
        printf '[%s %(%H:%M:%S)T] %s\n' "$GO_BUILD_LOG_NAME" -1 "$*"
    else
        printf '%s\n' "$*"
    fi
}

go_build_require_go() {
    command -v go >/dev/null || { echo "error: the Go toolchain ('go') is required" >&2; exit 1; }
}

go_build_cached() {
    local dir="$1" stamp="$2" name
    shift 2
    for name in "$@"; do
        [[ -x "$dir/$name" && -f "$dir/.stamp-$name" && "$(cat "$dir/.stamp-$name")" == "$stamp" ]] ||
            return 1
    done
}

go_build_stamp() {
    local dir="$1" stamp="$2" name
    shift 2
    for name in "$@"; do
        echo "$stamp" >"$dir/.stamp-$name"
    done
}

go_build_scratch_module() {
    mkdir -p "$1/$2"
    (cd "$1/$2" && go mod init "channelworks.local/$2-build" >/dev/null 2>&1)
}

go_build_stamped() {
    local label="$1" dir="$2" stamp="$3" names=()
    shift 3
    while (($#)) && [[ "$1" != "--" ]]; do
        names+=("$1")
        shift
    done
    (($# > 1)) || { echo "go_build_stamped: no command after --" >&2; exit 2; }
    shift
    if go_build_cached "$dir" "$stamp" "${names[@]}"; then
        go_build_log "$label: cached in $dir"
        return 0
    fi
    go_build_require_go
    mkdir -p "$dir"
    go_build_log "$label: building into $dir ($(go version), -p $GO_BUILD_JOBS)"
    local started=$SECONDS
    "$@"
    go_build_stamp "$dir" "$stamp" "${names[@]}"
    go_build_log "$label: done in $((SECONDS - started))s"
}

go_build_install() {
    local dir="$1"
    shift
    GOBIN="$dir" go install "${GO_BUILD_FLAGS[@]}" "$@"
}
