#!/usr/bin/env bash
# Build the Kubernetes binaries the tests run, from Go modules with the local Go toolchain;
# nothing prebuilt is fetched.
#   - The control plane the operator's and chart's tests run (the envtest approach): etcd,
#     kube-apiserver, kube-controller-manager, kube-scheduler, kwok (fake nodes, so pods really
#     become Running/Ready) and helm.
#   - The real single-node cluster of the e2e suite (e2e/node.sh): kubelet and kube-proxy (same
#     Kubernetes version as the control plane), CoreDNS with only the plugins the node needs
#     (tools/kube/coredns/main.go), kube-router (only its NetworkPolicy controller is run),
#     local-path-provisioner (PersistentVolumeClaims), and the Prometheus server (built with
#     promtool by tests/chart/build-promtool.sh, which this script calls).
# containerd, runc and the CNI plugins come from Debian's packages (scripts/install-test-deps.sh).
#
# Binaries are cached outside the repository and a stamp file per binary (.stamp-<name>, holding
# the version it was built at) makes later runs a no-op:
#   ${CHANNELWORKS_CACHE:-$HOME/.cache/channelworks}/kube/<k8s-version>/bin/
#       etcd kube-apiserver kube-controller-manager kube-scheduler kwok kubelet kube-proxy
#   ${CHANNELWORKS_CACHE:-$HOME/.cache/channelworks}/helm/<helm-version>/bin/helm
#   ${CHANNELWORKS_CACHE:-$HOME/.cache/channelworks}/node/bin/
#       coredns kube-router local-path-provisioner
#   ${CHANNELWORKS_CACHE:-$HOME/.cache/channelworks}/promtool/<version>/bin/prometheus (+promtool)
#
# Usage: tools/kube/build-binaries.sh [--print-dirs | --control-plane | --node]
#   (none)           build everything the tests and the e2e suite need (what
#                    scripts/install-test-deps.sh runs)
#   --control-plane  only etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, helm
#   --node           only kubelet, kube-proxy, coredns, kube-router, local-path-provisioner, the
#                    Prometheus server and kube-state-metrics
#   --print-dirs     print the bin directories and exit (builds nothing), one a line, always in
#                    this order (callers read them by line number; new lines only go at the end):
#                      1. kube bin dir (control plane, kwok, kubelet, kube-proxy)
#                      2. helm bin dir
#                      3. node bin dir (coredns, kube-router, local-path-provisioner)
#                      4. Prometheus bin dir (prometheus, promtool, kube-state-metrics)
# Environment: CHANNELWORKS_CACHE (cache root), BUILD_JOBS (go build -p, default: nproc, max 2).
#
# Build times measured on the 2-core CI machine (Go 1.26.8; "cold" = empty Go build and module
# caches for that binary, "warm" = its packages in the Go build cache, the binary missing):
#   etcd                                                       45 s cold
#   control plane (apiserver, controller-manager, scheduler)  16 min cold (load average ~10)
#   kubelet + kube-proxy                                       124 s warm (after the control
#                                                              plane); ~400 s if built alone cold
#   coredns (11 plugins)                                       250 s cold, ~30 s of it downloads
#   kube-router                                                517 s cold, 60 s warm
#   local-path-provisioner                                     324 s cold, 47 s warm
#   prometheus (server, no web UI, kubernetes/file/http SD)    see tests/chart/build-promtool.sh
# (coredns warm: 37 s; everything cached: 0.4 s. Cold times taken at load average 10-30 on the
# two cores, so upper bounds; docs/testing-control-plane.md has the table.)
# On a cold machine the five Kubernetes binaries are compiled by one `go build`, so the packages
# they share are compiled once.
set -euo pipefail

# Pinned versions. kube-apiserver 1.33 pins its etcd client at 3.5.21 in its own go.mod, so that is
# the etcd we build. kwok 0.7 is built against the 1.33 client libraries. (1.33 rather than 1.32:
# several k8s.io staging modules are not published for the 1.32 patch releases we can reach.)
K8S_VERSION="v1.33.13"
ETCD_VERSION="v3.5.21"
KWOK_VERSION="v0.7.0"
HELM_VERSION="v3.20.2"
# The node's add-ons. Each is the newest release the Go module proxy serves that builds with
# Go 1.26 and speaks the Kubernetes APIs that 1.33 serves (CoreDNS: EndpointSlice v1;
# kube-router: NetworkPolicy v1; local-path-provisioner is built against client-go 0.33).
COREDNS_VERSION="v1.14.7"
KUBE_ROUTER_VERSION="v2.10.0"
LOCAL_PATH_PROVISIONER_VERSION="v0.0.37"
# kube-state-metrics: the kube_* series the shipped Grafana dashboard reads (the e2e suite runs it
# beside Prometheus). Its go.mod has no replace directives: `go install` builds it directly.
KUBE_STATE_METRICS_VERSION="v2.20.0"
# kube-router v2.10.0 requires a netlink pseudo-version the module proxy does not serve; the
# newest netlink release it serves has every call kube-router makes.
NETLINK_VERSION="v1.3.1"

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROMETHEUS_SCRIPT="$HERE/../../tests/chart/build-promtool.sh"
CACHE_ROOT="${CHANNELWORKS_CACHE:-$HOME/.cache/channelworks}"
KUBE_BIN="$CACHE_ROOT/kube/$K8S_VERSION/bin"
HELM_BIN="$CACHE_ROOT/helm/$HELM_VERSION/bin"
NODE_BIN="$CACHE_ROOT/node/bin"

print_dirs() {
    echo "$KUBE_BIN"
    echo "$HELM_BIN"
    echo "$NODE_BIN"
    bash "$PROMETHEUS_SCRIPT" --print-dir
}

build_control_plane=true
build_node=true
case "${1:-}" in
    --print-dirs)
        print_dirs
        exit 0
        ;;
    --control-plane) build_node=false ;;
    --node) build_control_plane=false ;;
    "") ;;
    *)
        echo "usage: $0 [--print-dirs | --control-plane | --node]" >&2
        exit 2
        ;;
esac

cpus="$(nproc 2>/dev/null || echo 2)"
JOBS="${BUILD_JOBS:-$((cpus < 2 ? cpus : 2))}"
GO_BUILD_FLAGS=(-p "$JOBS" -trimpath)
export CGO_ENABLED=0

log() { printf '[build-binaries %(%H:%M:%S)T] %s\n' -1 "$*"; }

command -v go >/dev/null || { echo "error: the Go toolchain ('go') is required" >&2; exit 1; }
mkdir -p "$KUBE_BIN" "$HELM_BIN" "$NODE_BIN"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/channelworks-kube-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# stamp_ok DIR NAME VERSION: true when NAME was built at VERSION and the binary is still there.
stamp_ok() {
    [[ -x "$1/$2" && -f "$1/.stamp-$2" && "$(cat "$1/.stamp-$2")" == "$3" ]]
}
write_stamp() { echo "$3" >"$1/.stamp-$2"; }

# scratch_module NAME: a fresh, empty main module in $WORK/NAME; the caller cds into it.
scratch_module() {
    mkdir -p "$WORK/$1"
    (cd "$WORK/$1" && go mod init "channelworks.local/$1-build" >/dev/null 2>&1)
}

# The k8s.io/kubernetes module cannot be built with `go install pkg@version`: its go.mod replaces
# every k8s.io/* staging module with a path inside its own tree. A scratch module that requires it
# and replaces each staging module with the published v0.<minor>.<patch> tag builds it instead.
# All the missing binaries of the selected groups are compiled by one `go build`, so the packages
# they share (client-go, apimachinery, the API types...) are compiled once on a cold machine.
build_kubernetes() {
    local names=() missing=() n
    "$build_control_plane" && names+=(kube-apiserver kube-controller-manager kube-scheduler)
    "$build_node" && names+=(kubelet kube-proxy)
    for n in "${names[@]}"; do
        stamp_ok "$KUBE_BIN" "$n" "$K8S_VERSION" || missing+=("$n")
    done
    if ((${#missing[@]} == 0)); then
        log "kubernetes $K8S_VERSION: ${names[*]} cached in $KUBE_BIN"
        return
    fi
    log "kubernetes $K8S_VERSION: building ${missing[*]} (-p $JOBS; this is the long part)"
    local started=$SECONDS
    scratch_module kubernetes
    (
        cd "$WORK/kubernetes"
        local gomod
        gomod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
            sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
        [[ -f "$gomod" ]] || { echo "error: no go.mod for k8s.io/kubernetes@$K8S_VERSION" >&2; exit 1; }
        local staging="v0.${K8S_VERSION#v1.}" mod
        while read -r mod; do
            go mod edit -replace "$mod=$mod@$staging"
        done < <(sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/.*#\1#p' "$gomod")
        go mod edit -require "k8s.io/kubernetes@$K8S_VERSION"
        local pkgs=() ldflags
        for n in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$n"); done
        log "kubernetes: resolving modules"
        go get "${pkgs[@]/%/@$K8S_VERSION}"
        # The same version stamping the upstream release build does (hack/lib/version.sh), so the
        # apiserver and the kubelet report a real version to kubectl, helm and client libraries.
        local major="${K8S_VERSION#v}"; major="${major%%.*}"
        local minor="${K8S_VERSION#v*.}"; minor="${minor%%.*}"
        ldflags="-s -w"
        local p
        for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
            ldflags+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor"
            ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
        done
        log "kubernetes: compiling"
        go build "${GO_BUILD_FLAGS[@]}" -ldflags="$ldflags" -o "$KUBE_BIN/" "${pkgs[@]}"
    )
    for n in "${missing[@]}"; do write_stamp "$KUBE_BIN" "$n" "$K8S_VERSION"; done
    log "kubernetes $K8S_VERSION: ${missing[*]} done in $((SECONDS - started))s"
}

# etcd's server module also replaces its sibling modules with relative paths; same scratch trick.
build_etcd() {
    if stamp_ok "$KUBE_BIN" etcd "$ETCD_VERSION"; then
        log "etcd $ETCD_VERSION: cached in $KUBE_BIN"
        return
    fi
    log "etcd $ETCD_VERSION: building"
    local v2="v2.305.${ETCD_VERSION#v3.5.}"
    scratch_module etcd
    (
        cd "$WORK/etcd"
        local mod
        for mod in api/v3 client/pkg/v3 client/v3 pkg/v3 raft/v3 server/v3; do
            go mod edit -replace "go.etcd.io/etcd/$mod=go.etcd.io/etcd/$mod@$ETCD_VERSION"
        done
        go mod edit -replace "go.etcd.io/etcd/client/v2=go.etcd.io/etcd/client/v2@$v2"
        go mod edit -require "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
        # etcd 3.5 still lists reflect2 v1.0.1, which misbehaves with Go >= 1.18; take the fix.
        go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" github.com/modern-go/reflect2@v1.0.2 \
            github.com/json-iterator/go@v1.1.12
        go build "${GO_BUILD_FLAGS[@]}" -ldflags="-s -w" -o "$KUBE_BIN/etcd" \
            go.etcd.io/etcd/server/v3
    )
    write_stamp "$KUBE_BIN" etcd "$ETCD_VERSION"
    log "etcd $ETCD_VERSION: done"
}

# kwok, helm and local-path-provisioner have no replace directives: `go install pkg@version`
# builds them directly.
build_kwok() {
    if stamp_ok "$KUBE_BIN" kwok "$KWOK_VERSION"; then
        log "kwok $KWOK_VERSION: cached in $KUBE_BIN"
        return
    fi
    log "kwok $KWOK_VERSION: building"
    GOBIN="$KUBE_BIN" go install "${GO_BUILD_FLAGS[@]}" -ldflags="-s -w" \
        "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
    write_stamp "$KUBE_BIN" kwok "$KWOK_VERSION"
    log "kwok $KWOK_VERSION: done"
}

build_helm() {
    # The Kubernetes version helm assumes without a cluster (`helm template`, `helm lint`) is the
    # one we build, as a release build stamps it; otherwise it is 1.20, below the chart's
    # kubeVersion, and `helm template charts/channelworks` fails without --kube-version.
    local k8s_major k8s_minor stamp
    k8s_major="$(cut -d. -f1 <<<"${K8S_VERSION#v}")"
    k8s_minor="$(cut -d. -f2 <<<"$K8S_VERSION")"
    stamp="$HELM_VERSION kubernetes-$k8s_major.$k8s_minor"
    if stamp_ok "$HELM_BIN" helm "$stamp"; then
        log "helm $HELM_VERSION: cached in $HELM_BIN"
        return
    fi
    log "helm $HELM_VERSION: building"
    GOBIN="$HELM_BIN" go install "${GO_BUILD_FLAGS[@]}" \
        -ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION $(
            for package in chartutil lint/rules; do
                printf -- '-X helm.sh/helm/v3/pkg/%s.k8sVersionMajor=%s ' "$package" "$k8s_major"
                printf -- '-X helm.sh/helm/v3/pkg/%s.k8sVersionMinor=%s ' "$package" "$k8s_minor"
            done)" \
        "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
    write_stamp "$HELM_BIN" helm "$stamp"
    log "helm $HELM_VERSION: done"
}

# CoreDNS from a scratch main module (tools/kube/coredns/main.go) that imports CoreDNS's core and
# only the plugins the node's Corefile uses. The stamp also holds a hash of that file, so changing
# the plugin list rebuilds it.
build_coredns() {
    local main="$HERE/coredns/main.go" stamp
    stamp="$COREDNS_VERSION $(sha256sum "$main" | cut -c1-16)"
    if stamp_ok "$NODE_BIN" coredns "$stamp"; then
        log "coredns $COREDNS_VERSION: cached in $NODE_BIN"
        return
    fi
    log "coredns $COREDNS_VERSION: building (plugins: those of tools/kube/coredns/main.go)"
    local started=$SECONDS
    scratch_module coredns
    (
        cd "$WORK/coredns"
        cp "$main" main.go
        go get "github.com/coredns/coredns@$COREDNS_VERSION"
        go mod tidy
        go build "${GO_BUILD_FLAGS[@]}" -o "$NODE_BIN/coredns" \
            -ldflags="-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" .
    )
    write_stamp "$NODE_BIN" coredns "$stamp"
    log "coredns $COREDNS_VERSION: done in $((SECONDS - started))s"
}

# kube-router: `go install pkg@version` cannot resolve its command package through the module
# proxy (the lookup of the longer module path is refused), and its netlink requirement is not
# served; a scratch module that requires the module and replaces netlink builds it.
build_kube_router() {
    if stamp_ok "$NODE_BIN" kube-router "$KUBE_ROUTER_VERSION"; then
        log "kube-router $KUBE_ROUTER_VERSION: cached in $NODE_BIN"
        return
    fi
    log "kube-router $KUBE_ROUTER_VERSION: building"
    local started=$SECONDS module="github.com/cloudnativelabs/kube-router/v2"
    scratch_module kube-router
    (
        cd "$WORK/kube-router"
        go mod edit -replace \
            "github.com/vishvananda/netlink=github.com/vishvananda/netlink@$NETLINK_VERSION"
        go get "$module@$KUBE_ROUTER_VERSION"
        go build "${GO_BUILD_FLAGS[@]}" -mod=mod -o "$NODE_BIN/kube-router" \
            -ldflags="-s -w -X $module/pkg/version.Version=$KUBE_ROUTER_VERSION" \
            "$module/cmd/kube-router"
    )
    write_stamp "$NODE_BIN" kube-router "$KUBE_ROUTER_VERSION"
    log "kube-router $KUBE_ROUTER_VERSION: done in $((SECONDS - started))s"
}

build_local_path_provisioner() {
    local version="$LOCAL_PATH_PROVISIONER_VERSION"
    if stamp_ok "$NODE_BIN" local-path-provisioner "$version"; then
        log "local-path-provisioner $version: cached in $NODE_BIN"
        return
    fi
    log "local-path-provisioner $version: building"
    local started=$SECONDS
    GOBIN="$NODE_BIN" go install "${GO_BUILD_FLAGS[@]}" -ldflags="-s -w -X main.VERSION=$version" \
        "github.com/rancher/local-path-provisioner@$version"
    write_stamp "$NODE_BIN" local-path-provisioner "$version"
    log "local-path-provisioner $version: done in $((SECONDS - started))s"
}

build_kube_state_metrics() {
    local version="$KUBE_STATE_METRICS_VERSION" bin
    bin="$(bash "$PROMETHEUS_SCRIPT" --print-dir)"
    if stamp_ok "$bin" kube-state-metrics "$version"; then
        log "kube-state-metrics $version: cached in $bin"
        return
    fi
    log "kube-state-metrics $version: building"
    local started=$SECONDS
    mkdir -p "$bin"
    GOBIN="$bin" go install "${GO_BUILD_FLAGS[@]}" -ldflags="-s -w" \
        "k8s.io/kube-state-metrics/v2@$version"
    write_stamp "$bin" kube-state-metrics "$version"
    log "kube-state-metrics $version: done in $((SECONDS - started))s"
}

start=$SECONDS
log "cache: $CACHE_ROOT ($(go version))"
if "$build_control_plane"; then
    build_etcd
fi
build_kubernetes
if "$build_control_plane"; then
    build_kwok
    build_helm
fi
if "$build_node"; then
    build_coredns
    bash "$PROMETHEUS_SCRIPT"
    build_kube_router
    build_local_path_provisioner
    build_kube_state_metrics
fi
log "binaries ready in $((SECONDS - start))s:"
print_dirs | while read -r dir; do log "  $dir"; done
