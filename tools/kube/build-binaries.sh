#!/usr/bin/env bash
# Build the binaries that the operator's tests run as a real, local Kubernetes control plane
# (the envtest approach): etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok
# (fake nodes, so pods really become Running/Ready) and helm (for the chart tests).
#
# Everything is built from Go modules with the local Go toolchain; nothing prebuilt is fetched.
# Binaries are cached outside the repository and a stamp file per binary makes later runs a
# no-op:
#   ${CHANNELWORKS_CACHE:-$HOME/.cache/channelworks}/kube/<k8s-version>/bin/
#       etcd kube-apiserver kube-controller-manager kube-scheduler kwok
#   ${CHANNELWORKS_CACHE:-$HOME/.cache/channelworks}/helm/<helm-version>/bin/helm
#
# Usage: tools/kube/build-binaries.sh [--print-dirs]
#   --print-dirs  print the two bin directories and exit (builds nothing)
# Environment: CHANNELWORKS_CACHE (cache root), BUILD_JOBS (go build -p, default: nproc, max 2).
set -euo pipefail

# Pinned versions. kube-apiserver 1.33 pins its etcd client at 3.5.21 in its own go.mod, so that is
# the etcd we build. kwok 0.7 is built against the 1.33 client libraries. (1.33 rather than 1.32:
# several k8s.io staging modules are not published for the 1.32 patch releases we can reach.)
K8S_VERSION="v1.33.13"
ETCD_VERSION="v3.5.21"
KWOK_VERSION="v0.7.0"
HELM_VERSION="v3.20.2"

CACHE_ROOT="${CHANNELWORKS_CACHE:-$HOME/.cache/channelworks}"
KUBE_BIN="$CACHE_ROOT/kube/$K8S_VERSION/bin"
HELM_BIN="$CACHE_ROOT/helm/$HELM_VERSION/bin"

if [[ "${1:-}" == "--print-dirs" ]]; then
    echo "$KUBE_BIN"
    echo "$HELM_BIN"
    exit 0
fi

cpus="$(nproc 2>/dev/null || echo 2)"
JOBS="${BUILD_JOBS:-$((cpus < 2 ? cpus : 2))}"
GO_BUILD_FLAGS=(-p "$JOBS" -trimpath)

log() { printf '[build-binaries %(%H:%M:%S)T] %s\n' -1 "$*"; }

command -v go >/dev/null || { echo "error: the Go toolchain ('go') is required" >&2; exit 1; }
mkdir -p "$KUBE_BIN" "$HELM_BIN"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/channelworks-kube-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# stamp_ok DIR NAME VERSION: true when NAME was built at VERSION and the binary is still there.
stamp_ok() {
    [[ -x "$1/$2" && -f "$1/.stamp-$2" && "$(cat "$1/.stamp-$2")" == "$3" ]]
}
write_stamp() { echo "$3" >"$1/.stamp-$2"; }

# The k8s.io/kubernetes module cannot be built with `go install pkg@version`: its go.mod replaces
# every k8s.io/* staging module with a path inside its own tree. A scratch module that requires it
# and replaces each staging module with the published v0.<minor>.<patch> tag builds it instead.
build_kubernetes() {
    local names=(kube-apiserver kube-controller-manager kube-scheduler) missing=() n
    for n in "${names[@]}"; do
        stamp_ok "$KUBE_BIN" "$n" "$K8S_VERSION" || missing+=("$n")
    done
    if ((${#missing[@]} == 0)); then
        log "kubernetes $K8S_VERSION: cached in $KUBE_BIN"
        return
    fi
    log "kubernetes $K8S_VERSION: building ${missing[*]} (-p $JOBS; this is the long part)"
    local dir="$WORK/kubernetes" staging="v0.${K8S_VERSION#v1.}"
    mkdir -p "$dir"
    (
        cd "$dir"
        go mod init channelworks.local/kube-build >/dev/null 2>&1
        local gomod
        gomod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
            sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
        [[ -f "$gomod" ]] || { echo "error: no go.mod for k8s.io/kubernetes@$K8S_VERSION" >&2; exit 1; }
        local mod
        while read -r mod; do
            go mod edit -replace "$mod=$mod@$staging"
        done < <(sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/.*#\1#p' "$gomod")
        go mod edit -require "k8s.io/kubernetes@$K8S_VERSION"
        local pkgs=() ldflags
        for n in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$n"); done
        log "kubernetes: resolving modules"
        go get "${pkgs[@]/%/@$K8S_VERSION}"
        # The same version stamping the upstream release build does (hack/lib/version.sh), so the
        # apiserver reports a real version to kubectl, helm and client libraries.
        local major="${K8S_VERSION#v}"; major="${major%%.*}"
        local minor="${K8S_VERSION#v*.}"; minor="${minor%%.*}"
        ldflags="-s -w"
        local p
        for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
            ldflags+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor"
            ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
        done
        log "kubernetes: compiling"
        CGO_ENABLED=0 go build "${GO_BUILD_FLAGS[@]}" -ldflags="$ldflags" -o "$KUBE_BIN/" "${pkgs[@]}"
    )
    for n in "${missing[@]}"; do write_stamp "$KUBE_BIN" "$n" "$K8S_VERSION"; done
    log "kubernetes $K8S_VERSION: done"
}

# etcd's server module also replaces its sibling modules with relative paths; same scratch trick.
build_etcd() {
    if stamp_ok "$KUBE_BIN" etcd "$ETCD_VERSION"; then
        log "etcd $ETCD_VERSION: cached in $KUBE_BIN"
        return
    fi
    log "etcd $ETCD_VERSION: building"
    local dir="$WORK/etcd" v2="v2.305.${ETCD_VERSION#v3.5.}"
    mkdir -p "$dir"
    (
        cd "$dir"
        go mod init channelworks.local/etcd-build >/dev/null 2>&1
        local mod
        for mod in api/v3 client/pkg/v3 client/v3 pkg/v3 raft/v3 server/v3; do
            go mod edit -replace "go.etcd.io/etcd/$mod=go.etcd.io/etcd/$mod@$ETCD_VERSION"
        done
        go mod edit -replace "go.etcd.io/etcd/client/v2=go.etcd.io/etcd/client/v2@$v2"
        go mod edit -require "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
        # etcd 3.5 still lists reflect2 v1.0.1, which misbehaves with Go >= 1.18; take the fix.
        go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" github.com/modern-go/reflect2@v1.0.2 \
            github.com/json-iterator/go@v1.1.12
        CGO_ENABLED=0 go build "${GO_BUILD_FLAGS[@]}" -ldflags="-s -w" -o "$KUBE_BIN/etcd" \
            go.etcd.io/etcd/server/v3
    )
    write_stamp "$KUBE_BIN" etcd "$ETCD_VERSION"
    log "etcd $ETCD_VERSION: done"
}

# kwok and helm have no replace directives: `go install pkg@version` builds them directly.
build_kwok() {
    if stamp_ok "$KUBE_BIN" kwok "$KWOK_VERSION"; then
        log "kwok $KWOK_VERSION: cached in $KUBE_BIN"
        return
    fi
    log "kwok $KWOK_VERSION: building"
    CGO_ENABLED=0 GOBIN="$KUBE_BIN" go install "${GO_BUILD_FLAGS[@]}" \
        -ldflags="-s -w" \
        "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
    write_stamp "$KUBE_BIN" kwok "$KWOK_VERSION"
    log "kwok $KWOK_VERSION: done"
}

build_helm() {
    if stamp_ok "$HELM_BIN" helm "$HELM_VERSION"; then
        log "helm $HELM_VERSION: cached in $HELM_BIN"
        return
    fi
    log "helm $HELM_VERSION: building"
    CGO_ENABLED=0 GOBIN="$HELM_BIN" go install "${GO_BUILD_FLAGS[@]}" \
        -ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
        "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
    write_stamp "$HELM_BIN" helm "$HELM_VERSION"
    log "helm $HELM_VERSION: done"
}

start=$SECONDS
log "cache: $CACHE_ROOT ($(go version))"
build_etcd
build_kubernetes
build_kwok
build_helm
log "all binaries ready in $((SECONDS - start))s"
log "  $KUBE_BIN"
log "  $HELM_BIN"
