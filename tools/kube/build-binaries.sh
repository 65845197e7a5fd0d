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
# the version it was built at) makes later runs a no-op (tools/go-build.sh, which
# tests/chart/build-promtool.sh and bench/centrifugo/build.sh share):
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
# shellcheck source=tools/go-build.sh
source "$HERE/../go-build.sh"
GO_BUILD_LOG_NAME=build-binaries
PROMETHEUS_SCRIPT="$HERE/../../tests/chart/build-promtool.sh"
KUBE_BIN="$GO_BUILD_CACHE/kube/$K8S_VERSION/bin"
HELM_BIN="$GO_BUILD_CACHE/helm/$HELM_VERSION/bin"
NODE_BIN="$GO_BUILD_CACHE/node/bin"

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

go_build_require_go
mkdir -p "$KUBE_BIN" "$HELM_BIN" "$NODE_BIN"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/channelworks-kube-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

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
        go_build_cached "$KUBE_BIN" "$K8S_VERSION" "$n" || missing+=("$n")
    done
    if ((${#missing[@]} == 0)); then
        go_build_log "kubernetes $K8S_VERSION: ${names[*]} cached in $KUBE_BIN"
        return
    fi
    go_build_stamped "kubernetes $K8S_VERSION: ${missing[*]} (the long part)" \
        "$KUBE_BIN" "$K8S_VERSION" "${missing[@]}" -- compile_kubernetes "${missing[@]}"
}

# compile_kubernetes NAME...: the commands NAME... of k8s.io/kubernetes into $KUBE_BIN.
compile_kubernetes() (
    go_build_scratch_module "$WORK" kubernetes
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
    local pkgs=() ldflags n
    for n in "$@"; do pkgs+=("k8s.io/kubernetes/cmd/$n"); done
    go_build_log "kubernetes: resolving modules"
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
    go_build_log "kubernetes: compiling"
    go build "${GO_BUILD_FLAGS[@]}" -ldflags="$ldflags" -o "$KUBE_BIN/" "${pkgs[@]}"
)

# etcd's server module also replaces its sibling modules with relative paths; same scratch trick.
compile_etcd() (
    local v2="v2.305.${ETCD_VERSION#v3.5.}" mod
    go_build_scratch_module "$WORK" etcd
    cd "$WORK/etcd"
    for mod in api/v3 client/pkg/v3 client/v3 pkg/v3 raft/v3 server/v3; do
        go mod edit -replace "go.etcd.io/etcd/$mod=go.etcd.io/etcd/$mod@$ETCD_VERSION"
    done
    go mod edit -replace "go.etcd.io/etcd/client/v2=go.etcd.io/etcd/client/v2@$v2"
    go mod edit -require "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
    # etcd 3.5 still lists reflect2 v1.0.1, which misbehaves with Go >= 1.18; take the fix.
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" github.com/modern-go/reflect2@v1.0.2 \
        github.com/json-iterator/go@v1.1.12
    go build "${GO_BUILD_FLAGS[@]}" -ldflags="-s -w" -o "$KUBE_BIN/etcd" go.etcd.io/etcd/server/v3
)

build_etcd() {
    go_build_stamped "etcd $ETCD_VERSION" "$KUBE_BIN" "$ETCD_VERSION" etcd -- compile_etcd
}

# kwok, helm, local-path-provisioner and kube-state-metrics have no replace directives:
# `go install pkg@version` builds them directly.
build_kwok() {
    go_build_stamped "kwok $KWOK_VERSION" "$KUBE_BIN" "$KWOK_VERSION" kwok -- \
        go_build_install "$KUBE_BIN" -ldflags="-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
}

build_helm() {
    # The Kubernetes version helm assumes without a cluster (`helm template`, `helm lint`) is the
    # one we build, as a release build stamps it; otherwise it is 1.20, below the chart's
    # kubeVersion, and `helm template charts/channelworks` fails without --kube-version.
    local k8s_major k8s_minor ldflags package
    k8s_major="$(cut -d. -f1 <<<"${K8S_VERSION#v}")"
    k8s_minor="$(cut -d. -f2 <<<"$K8S_VERSION")"
    ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
    for package in chartutil lint/rules; do
        ldflags+=" -X helm.sh/helm/v3/pkg/$package.k8sVersionMajor=$k8s_major"
        ldflags+=" -X helm.sh/helm/v3/pkg/$package.k8sVersionMinor=$k8s_minor"
    done
    go_build_stamped "helm $HELM_VERSION" \
        "$HELM_BIN" "$HELM_VERSION kubernetes-$k8s_major.$k8s_minor" helm -- \
        go_build_install "$HELM_BIN" -ldflags="$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

# CoreDNS from a scratch main module (tools/kube/coredns/main.go) that imports CoreDNS's core and
# only the plugins the node's Corefile uses. The stamp also holds a hash of that file, so changing
# the plugin list rebuilds it.
COREDNS_MAIN="$HERE/coredns/main.go"
compile_coredns() (
    go_build_scratch_module "$WORK" coredns
    cd "$WORK/coredns"
    cp "$COREDNS_MAIN" main.go
    go get "github.com/coredns/coredns@$COREDNS_VERSION"
    go mod tidy
    go build "${GO_BUILD_FLAGS[@]}" -o "$NODE_BIN/coredns" \
        -ldflags="-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" .
)

build_coredns() {
    local stamp
    stamp="$COREDNS_VERSION $(sha256sum "$COREDNS_MAIN" | cut -c1-16)"
    go_build_stamped "coredns $COREDNS_VERSION (plugins: those of tools/kube/coredns/main.go)" \
        "$NODE_BIN" "$stamp" coredns -- compile_coredns
}

# kube-router: `go install pkg@version` cannot resolve its command package through the module
# proxy (the lookup of the longer module path is refused), and its netlink requirement is not
# served; a scratch module that requires the module and replaces netlink builds it.
compile_kube_router() (
    local module="github.com/cloudnativelabs/kube-router/v2"
    go_build_scratch_module "$WORK" kube-router
    cd "$WORK/kube-router"
    go mod edit -replace \
        "github.com/vishvananda/netlink=github.com/vishvananda/netlink@$NETLINK_VERSION"
    go get "$module@$KUBE_ROUTER_VERSION"
    go build "${GO_BUILD_FLAGS[@]}" -mod=mod -o "$NODE_BIN/kube-router" \
        -ldflags="-s -w -X $module/pkg/version.Version=$KUBE_ROUTER_VERSION" \
        "$module/cmd/kube-router"
)

build_kube_router() {
    go_build_stamped "kube-router $KUBE_ROUTER_VERSION" \
        "$NODE_BIN" "$KUBE_ROUTER_VERSION" kube-router -- compile_kube_router
}

build_local_path_provisioner() {
    local version="$LOCAL_PATH_PROVISIONER_VERSION"
    go_build_stamped "local-path-provisioner $version" "$NODE_BIN" "$version" \
        local-path-provisioner -- go_build_install "$NODE_BIN" \
        -ldflags="-s -w -X main.VERSION=$version" "github.com/rancher/local-path-provisioner@$version"
}

build_kube_state_metrics() {
    local version="$KUBE_STATE_METRICS_VERSION" bin
    bin="$(bash "$PROMETHEUS_SCRIPT" --print-dir)"
    go_build_stamped "kube-state-metrics $version" "$bin" "$version" kube-state-metrics -- \
        go_build_install "$bin" -ldflags="-s -w" "k8s.io/kube-state-metrics/v2@$version"
}

start=$SECONDS
go_build_log "cache: $GO_BUILD_CACHE ($(go version))"
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
go_build_log "binaries ready in $((SECONDS - start))s:"
print_dirs | while read -r dir; do go_build_log "  $dir"; done
