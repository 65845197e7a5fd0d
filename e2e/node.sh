#!/usr/bin/env bash
# A real single-node Kubernetes cluster inside a network namespace, for the end-to-end suite:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd + runc, kubelet,
# kube-proxy, CoreDNS, kube-router (NetworkPolicy only) and local-path-provisioner, all processes
# of this machine, all inside one network namespace and one private mount namespace made here.
# Nothing listens outside the namespace and nothing can leave it. Needs root.
#
#   e2e/node.sh up [--images DIR] [--timeout SECONDS]
#       brings the node up (Node Ready, cluster DNS answering), imports every *.tar image
#       archive of DIR into the node's containerd, writes the env file and prints its path
#   e2e/node.sh exec [--] CMD [ARG...]
#       runs CMD inside the node's network and mount namespaces, in the current directory, with
#       the env file's variables (KUBECONFIG, ...) exported and kubectl/helm on PATH
#   e2e/node.sh import DIR      imports the image archives of DIR into a running node
#   e2e/node.sh down            stops and removes everything; safe when nothing is up
#   e2e/node.sh status          exits 0 when the node is up (and prints the env file)
#
# Environment: CHANNELWORKS_NODE_STATE (state directory, default /tmp/channelworks-node; the env
# file is $CHANNELWORKS_NODE_STATE/env), CHANNELWORKS_NODE_NETNS (default channelworks-node),
# CHANNELWORKS_NODE_SANDBOX_IMAGE (the pause image), CHANNELWORKS_NODE_HELPER_IMAGE (an image with
# /bin/sh for local-path-provisioner's helper pods), CHANNELWORKS_CACHE (binary cache root).
# docs/testing-real-node.md explains every setting and the env file.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
node_dir="$repo_root/e2e/node"

STATE="${CHANNELWORKS_NODE_STATE:-/tmp/channelworks-node}"
NETNS="${CHANNELWORKS_NODE_NETNS:-channelworks-node}"
SANDBOX_IMAGE="${CHANNELWORKS_NODE_SANDBOX_IMAGE:-localhost/channelworks/pause:3.10}"
HELPER_IMAGE="${CHANNELWORKS_NODE_HELPER_IMAGE:-localhost/channelworks/base:bookworm-python3}"

# The cluster's fixed addresses: they exist only inside the node's network namespace.
NODE_NAME="channelworks-node"
NODE_IP="10.250.0.2"
NODE_PREFIX="24"
NODE_GATEWAY="10.250.0.1"   # the address of nobody: the veth peer stays down
NODE_IF="node0"
POD_CIDR="10.244.0.0/24"
SERVICE_CIDR="10.96.0.0/16"
API_SERVICE_IP="10.96.0.1"
DNS_SERVICE_IP="10.96.0.10"
CLUSTER_DOMAIN="cluster.local"
API_PORT=6443
STORAGE_CLASS="local-path"
CGROUP_ROOT="/$NETNS"       # the kubelet's cgroupRoot, in every cgroup v1 hierarchy

UP_TIMEOUT=240
CNI_BIN=/usr/lib/cni
SYSTEM_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf '[node %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
fail() {
    printf '[node] error: %s\n' "$*" >&2
    exit 1
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# -- locating things -------------------------------------------------------------------------

declare -A BIN=()

# find_binaries: every binary the node runs, from build-binaries.sh's cache directories (each line
# of --print-dirs) or the system's PATH; one clear error naming everything missing.
find_binaries() {
    local dirs=() dir name missing=()
    mapfile -t dirs < <(bash "$repo_root/tools/kube/build-binaries.sh" --print-dirs)
    local cache="${CHANNELWORKS_CACHE:-$HOME/.cache/channelworks}"
    dirs+=("$cache/node/bin")
    for name in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy \
        coredns kube-router local-path-provisioner helm kubectl; do
        BIN[$name]=""
        for dir in "${dirs[@]}"; do
            if [[ -x "$dir/$name" ]]; then
                BIN[$name]="$dir/$name"
                break
            fi
        done
        # kubectl: the cache's when the build script makes one, else the system's.
        if [[ -z "${BIN[$name]}" && "$name" == kubectl ]]; then
            BIN[$name]="$(PATH="$SYSTEM_PATH:$PATH" command -v kubectl || true)"
        fi
        [[ -n "${BIN[$name]}" ]] || missing+=("$name")
    done
    for name in containerd containerd-shim-runc-v2 runc ctr iptables ipset conntrack \
        nsenter unshare setsid ip openssl python3 flock curl; do
        BIN[$name]="$(PATH="$SYSTEM_PATH:$PATH" command -v "$name" || true)"
        [[ -n "${BIN[$name]}" ]] || missing+=("$name")
    done
    for name in bridge host-local loopback portmap; do
        [[ -x "$CNI_BIN/$name" ]] || missing+=("$CNI_BIN/$name")
    done
    if ((${#missing[@]})); then
        fail "missing: ${missing[*]} (the Kubernetes binaries: tools/kube/build-binaries.sh;" \
            "the Debian packages: scripts/install-test-deps.sh)"
    fi
}

holder_pid() { cat "$STATE/holder.pid" 2>/dev/null || true; }

holder_alive() {
    local pid
    pid="$(holder_pid)"
    [[ -n "$pid" && -e "/proc/$pid/ns/mnt" ]] &&
        [[ "$(readlink "/proc/$pid/ns/mnt")" == "$(cat "$STATE/mntns" 2>/dev/null)" ]]
}

# in_node CMD...: run CMD in the node's network and mount namespaces (current directory kept).
in_node() {
    nsenter --target "$(holder_pid)" --mount --net --wd="$PWD" -- "$@"
}

node_kubectl() { in_node "${BIN[kubectl]}" --kubeconfig "$STATE/kubeconfig" "$@"; }

# -- files: certificates, kubeconfigs, configs -------------------------------------------------

# new_key PATH: an ECDSA P-256 key (quick to make, accepted by every component).
new_key() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
    chmod 600 "$1"
}

# new_cert NAME SUBJECT EXTENDED_KEY_USAGE [SANS]: pki/NAME.{key,crt}, signed by the node's CA.
new_cert() {
    local name="$1" subject="$2" usage="$3" sans="${4:-}" pki="$STATE/pki"
    new_key "$pki/$name.key"
    openssl req -new -key "$pki/$name.key" -subj "$subject" -out "$pki/$name.csr" 2>/dev/null
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=$usage"
        [[ -z "$sans" ]] || echo "subjectAltName=$sans"
    } >"$pki/$name.ext"
    openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
        -CAcreateserial -days 30 -sha256 -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null
    rm -f "$pki/$name.csr" "$pki/$name.ext"
}

write_pki() {
    local pki="$STATE/pki"
    mkdir -p "$pki"
    new_key "$pki/ca.key"
    openssl req -x509 -new -key "$pki/ca.key" -subj "/CN=channelworks-node-ca" -days 30 -sha256 \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
        -out "$pki/ca.crt" 2>/dev/null
    local api_sans="DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
    api_sans+=",DNS:kubernetes.default.svc.$CLUSTER_DOMAIN,DNS:localhost,DNS:$NODE_NAME"
    api_sans+=",IP:$NODE_IP,IP:$API_SERVICE_IP,IP:127.0.0.1"
    new_cert apiserver "/CN=kube-apiserver" serverAuth "$api_sans"
    new_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
    new_cert front-proxy-client "/CN=front-proxy-client" clientAuth
    new_cert admin "/O=system:masters/CN=channelworks-admin" clientAuth
    new_cert kube-controller-manager "/CN=system:kube-controller-manager" clientAuth
    new_cert kube-scheduler "/CN=system:kube-scheduler" clientAuth
    new_cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
    new_cert kubelet-serving "/CN=$NODE_NAME" serverAuth "DNS:$NODE_NAME,IP:$NODE_IP"
    new_cert kube-proxy "/CN=system:kube-proxy" clientAuth
    new_cert addons "/O=system:masters/CN=channelworks-node-addons" clientAuth
    new_key "$pki/sa.key"
    openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
}

# write_kubeconfig NAME CERT: kubeconfigs/NAME for the client certificate pki/CERT.
write_kubeconfig() {
    local path="$STATE/kubeconfigs/$1" pki="$STATE/pki"
    cat >"$path" <<EOF
apiVersion: v1
kind: Config
current-context: channelworks-node
clusters:
- name: channelworks-node
  cluster:
    server: https://$NODE_IP:$API_PORT
    certificate-authority: $pki/ca.crt
users:
- name: $2
  user:
    client-certificate: $pki/$2.crt
    client-key: $pki/$2.key
contexts:
- name: channelworks-node
  context: {cluster: channelworks-node, user: $2}
EOF
    chmod 600 "$path"
}

write_configs() {
    mkdir -p "$STATE"/{kubeconfigs,etc,sysctl,cni/net.d,logs,config}
    local name
    for name in admin kube-controller-manager kube-scheduler kubelet kube-proxy addons; do
        write_kubeconfig "$name" "$name"
    done
    cp "$STATE/kubeconfigs/admin" "$STATE/kubeconfig"

    printf '127.0.0.1 localhost\n%s %s\n' "$NODE_IP" "$NODE_NAME" >"$STATE/etc/hosts"
    printf '# channelworks node: no name server (see docs/testing-real-node.md)\n' \
        >"$STATE/etc/resolv.conf"
    # The values the kubelet wants (pkg/kubelet/cm: setupKernelTunables).
    echo 1 >"$STATE/sysctl/vm.overcommit_memory"
    echo 0 >"$STATE/sysctl/vm.panic_on_oom"
    echo 10 >"$STATE/sysctl/kernel.panic"
    echo 1 >"$STATE/sysctl/kernel.panic_on_oops"
    echo 1000000 >"$STATE/sysctl/kernel.keys.root_maxkeys"
    echo 25000000 >"$STATE/sysctl/kernel.keys.root_maxbytes"

    cat >"$STATE/config/containerd.toml" <<EOF
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$SANDBOX_IMAGE"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "${BIN[runc]}"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$STATE/cni/net.d"
EOF

    cat >"$STATE/cni/net.d/10-channelworks.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "channelworks",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_CIDR"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "/var/lib/cni/networks"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF

    cat >"$STATE/config/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $STATE/pki/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $STATE/pki/kubelet-serving.crt
tlsPrivateKeyFile: $STATE/pki/kubelet-serving.key
rotateCertificates: false
cgroupDriver: cgroupfs
cgroupRoot: $CGROUP_ROOT
cgroupsPerQOS: true
failCgroupV1: false
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
podLogsDir: /var/log/pods
clusterDNS: [$DNS_SERVICE_IP]
clusterDomain: $CLUSTER_DOMAIN
resolvConf: /etc/resolv.conf
failSwapOn: false
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
EOF

    cat >"$STATE/config/Corefile" <<EOF
.:53 {
    bind $NODE_IP 127.0.0.1
    errors
    ready 127.0.0.1:8181
    kubernetes $CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
        kubeconfig $STATE/kubeconfigs/addons channelworks-node
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }
    cache 5
    loadbalance
}
EOF

    mkdir -p "$STATE/config/local-path"
    cat >"$STATE/config/local-path/config.json" <<EOF
{"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES",
                  "paths": ["/var/lib/local-path-provisioner"]}]}
EOF
    cat >"$STATE/config/local-path/helperPod.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: helper-pod
spec:
  priorityClassName: system-node-critical
  tolerations:
  - {key: node.kubernetes.io/disk-pressure, operator: Exists, effect: NoSchedule}
  containers:
  - name: helper-pod
    image: $HELPER_IMAGE
    imagePullPolicy: Never
EOF
}

# The objects the add-ons need before they start: the kube-dns Service (CoreDNS is a process on
# the node, so its EndpointSlice is written here), local-path-provisioner's namespace, service
# account, scripts, and the default StorageClass.
bootstrap_manifest() {
    cat <<EOF
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns, kubernetes.io/name: CoreDNS}
spec:
  clusterIP: $DNS_SERVICE_IP
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-node
  namespace: kube-system
  labels:
    kubernetes.io/service-name: kube-dns
    endpointslice.kubernetes.io/managed-by: channelworks-node
addressType: IPv4
endpoints:
- addresses: [$NODE_IP]
  conditions: {ready: true}
  nodeName: $NODE_NAME
ports:
- {name: dns, port: 53, protocol: UDP}
- {name: dns-tcp, port: 53, protocol: TCP}
---
apiVersion: v1
kind: Namespace
metadata:
  name: local-path-storage
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: local-path-provisioner-service-account
  namespace: local-path-storage
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: local-path-config
  namespace: local-path-storage
data:
  setup: |-
    #!/bin/sh
    set -eu
    mkdir -m 0777 -p "\$VOL_DIR"
  teardown: |-
    #!/bin/sh
    set -eu
    rm -rf "\$VOL_DIR"
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: $STORAGE_CLASS
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: rancher.io/local-path
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Delete
EOF
}

# -- the namespaces and cgroups ----------------------------------------------------------------

make_netns() {
    # Traffic between two pods on the bridge must pass iptables, or a Service's replies skip
    # kube-proxy's reverse translation: that takes the br_netfilter module.
    [[ -d /proc/sys/net/bridge ]] || modprobe br_netfilter 2>/dev/null ||
        fail "the kernel has no br_netfilter (modprobe br_netfilter failed)"
    ip netns add "$NETNS"
    ip -n "$NETNS" link set lo up
    # Both ends of the pair live in the node's namespace; the peer stays down, so what is routed
    # to the default gateway goes nowhere.
    ip -n "$NETNS" link add "$NODE_IF" type veth peer name "$NODE_IF-peer"
    ip -n "$NETNS" addr add "$NODE_IP/$NODE_PREFIX" dev "$NODE_IF"
    ip -n "$NETNS" link set "$NODE_IF" up
    ip -n "$NETNS" route add default via "$NODE_GATEWAY" dev "$NODE_IF"
    nsenter --net="/run/netns/$NETNS" -- sysctl -q -w net.ipv4.ip_forward=1 \
        net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1
}

start_holder() {
    setsid nsenter --net="/run/netns/$NETNS" -- unshare --mount --propagation slave -- \
        bash "$node_dir/holder.sh" "$STATE" </dev/null >"$STATE/logs/holder.log" 2>&1 9>&- &
    local holder=$! deadline=$((SECONDS + 15))
    disown $holder
    until [[ -s "$STATE/holder.pid" ]]; do
        ((SECONDS < deadline)) || fail "the namespace holder did not start: $(cat "$STATE/logs/holder.log")"
        alive $holder || fail "the namespace holder failed: $(cat "$STATE/logs/holder.log")"
        sleep 0.05
    done
    readlink "/proc/$(holder_pid)/ns/mnt" >"$STATE/mntns"
}

# v1_hierarchies: the mount point of every cgroup v1 hierarchy; cgroup_mounts: and the unified
# (v2) one of the hybrid layout, where the kubelet creates the cgroupRoot by itself.
v1_hierarchies() { awk '$3 == "cgroup" { print $2 }' /proc/self/mounts; }
cgroup_mounts() { awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/self/mounts; }

make_cgroups() {
    local hierarchy
    for hierarchy in $(v1_hierarchies); do
        mkdir -p "$hierarchy$CGROUP_ROOT"
        if [[ -f "$hierarchy/cpuset.cpus" ]]; then
            cat "$hierarchy/cpuset.cpus" >"$hierarchy$CGROUP_ROOT/cpuset.cpus"
            cat "$hierarchy/cpuset.mems" >"$hierarchy$CGROUP_ROOT/cpuset.mems"
        fi
    done
}

# -- components --------------------------------------------------------------------------------

declare -a STARTED=()

# start NAME BINARY ARGS...: one component, in the node's namespaces, detached from this script
# (it outlives `up`), its output in logs/NAME.log and its PID in pids/NAME.
start() {
    local name="$1"
    shift
    mkdir -p "$STATE/pids"
    setsid nsenter --target "$(holder_pid)" --mount --net --wd="$STATE" -- \
        env -i PATH="$SYSTEM_PATH" HOME="$STATE" "$@" \
        </dev/null >>"$STATE/logs/$name.log" 2>&1 9>&- &
    echo $! >"$STATE/pids/$name"
    disown $!   # no job notice when `down` kills it
    STARTED+=("$name")
}

# alive PID: the process runs (a zombie, an exited child not yet waited for, does not count).
alive() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [[ "${stat:0:1}" != Z ]]
}

log_tail() { tail -n "${2:-30}" "$STATE/logs/$1.log" 2>/dev/null || echo "(no log)"; }

# wait_until WHAT CMD...: poll CMD until it succeeds; fail (with the log tails of whatever
# stopped) when a started component exits or the deadline of `up` passes.
wait_until() {
    local what="$1" name
    shift
    until "$@" >/dev/null 2>&1; do
        for name in "${STARTED[@]}"; do
            if ! alive "$(cat "$STATE/pids/$name")"; then
                fail "$name exited while waiting for $what; last lines of its log:
$(log_tail "$name")"
            fi
        done
        if ((SECONDS >= DEADLINE)); then
            fail "$what: not within ${UP_TIMEOUT}s; last lines of the logs:
$(for name in "${STARTED[@]}"; do printf -- '--- %s\n%s\n' "$name" "$(log_tail "$name" 8)"; done)"
        fi
        sleep 0.2
    done
    log "$what ($((SECONDS - START))s)"
}

https_ok() {
    in_node curl -sf --max-time 3 --cacert "$STATE/pki/ca.crt" \
        --cert "$STATE/pki/admin.crt" --key "$STATE/pki/admin.key" "$1"
}

start_etcd() {
    start etcd "${BIN[etcd]}" --name=node --data-dir=/var/lib/etcd \
        --listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 \
        --listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 \
        --initial-cluster=node=http://127.0.0.1:2380 --listen-metrics-urls=http://127.0.0.1:2381 \
        --unsafe-no-fsync --log-level=warn
}

start_apiserver() {
    local pki="$STATE/pki"
    start kube-apiserver "${BIN[kube-apiserver]}" \
        --etcd-servers=http://127.0.0.1:2379 \
        --bind-address=0.0.0.0 --secure-port="$API_PORT" --advertise-address="$NODE_IP" \
        --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
        --client-ca-file="$pki/ca.crt" \
        --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" \
        --kubelet-client-key="$pki/apiserver-kubelet-client.key" \
        --kubelet-preferred-address-types=InternalIP \
        --requestheader-client-ca-file="$pki/ca.crt" \
        --requestheader-allowed-names=front-proxy-client \
        --requestheader-username-headers=X-Remote-User \
        --requestheader-group-headers=X-Remote-Group \
        --requestheader-extra-headers-prefix=X-Remote-Extra- \
        --proxy-client-cert-file="$pki/front-proxy-client.crt" \
        --proxy-client-key-file="$pki/front-proxy-client.key" \
        --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
        --service-account-issuer="https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
        --service-account-key-file="$pki/sa.pub" \
        --service-account-signing-key-file="$pki/sa.key" \
        --service-cluster-ip-range="$SERVICE_CIDR" --allow-privileged=true \
        --cert-dir="$STATE/certs/kube-apiserver" --profiling=false
}

start_controller_manager() {
    local pki="$STATE/pki" kubeconfig="$STATE/kubeconfigs/kube-controller-manager"
    start kube-controller-manager "${BIN[kube-controller-manager]}" \
        --kubeconfig="$kubeconfig" --authentication-kubeconfig="$kubeconfig" \
        --authorization-kubeconfig="$kubeconfig" \
        --bind-address=127.0.0.1 --secure-port=10257 --leader-elect=false \
        --cert-dir="$STATE/certs/kube-controller-manager" \
        --use-service-account-credentials=true \
        --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
        --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
        --allocate-node-cidrs=true --cluster-cidr="$POD_CIDR" --node-cidr-mask-size=24 \
        --service-cluster-ip-range="$SERVICE_CIDR" --cluster-name=channelworks-node \
        --profiling=false
}

start_scheduler() {
    local kubeconfig="$STATE/kubeconfigs/kube-scheduler"
    start kube-scheduler "${BIN[kube-scheduler]}" \
        --kubeconfig="$kubeconfig" --authentication-kubeconfig="$kubeconfig" \
        --authorization-kubeconfig="$kubeconfig" \
        --bind-address=127.0.0.1 --secure-port=10259 --leader-elect=false \
        --profiling=false
}

start_containerd() {
    start containerd "${BIN[containerd]}" --config="$STATE/config/containerd.toml"
}

containerd_ok() {
    in_node "${BIN[ctr]}" --address /run/containerd/containerd.sock version
}

start_kubelet() {
    start kubelet "${BIN[kubelet]}" --config="$STATE/config/kubelet.yaml" \
        --kubeconfig="$STATE/kubeconfigs/kubelet" \
        --hostname-override="$NODE_NAME" --node-ip="$NODE_IP"
}

start_kube_proxy() {
    start kube-proxy "${BIN[kube-proxy]}" --kubeconfig="$STATE/kubeconfigs/kube-proxy" \
        --hostname-override="$NODE_NAME" --proxy-mode=iptables --cluster-cidr="$POD_CIDR" \
        --conntrack-max-per-core=0 --conntrack-tcp-timeout-established=0 \
        --conntrack-tcp-timeout-close-wait=0 \
        --metrics-bind-address=127.0.0.1:10249 --healthz-bind-address=127.0.0.1:10256
}

start_coredns() {
    start coredns "${BIN[coredns]}" -conf "$STATE/config/Corefile"
}

start_kube_router() {
    start kube-router "${BIN[kube-router]}" --kubeconfig="$STATE/kubeconfigs/addons" \
        --hostname-override="$NODE_NAME" \
        --run-firewall=true --run-router=false --run-service-proxy=false \
        --run-loadbalancer=false --enable-cni=false --enable-ipv6=false \
        --service-cluster-ip-range="$SERVICE_CIDR" --health-port=20244
}

start_local_path_provisioner() {
    start local-path-provisioner "${BIN[local-path-provisioner]}" --debug start \
        --kubeconfig="$STATE/kubeconfigs/addons" --namespace=local-path-storage \
        --config="$STATE/config/local-path/config.json" \
        --helper-pod-file="$STATE/config/local-path/helperPod.yaml" \
        --configmap-name=local-path-config --helper-image="$HELPER_IMAGE" \
        --service-account-name=local-path-provisioner-service-account \
        --provisioner-name=rancher.io/local-path --health-port=20245
}

node_ready() {
    [[ "$(node_kubectl get node "$NODE_NAME" \
        -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]
}

cluster_dns_ok() {
    in_node "${BIN[python3]}" "$node_dir/dns_probe.py" "$DNS_SERVICE_IP" \
        "kubernetes.default.svc.$CLUSTER_DOMAIN"
}

# import_images DIR: every *.tar (docker-archive) of DIR into containerd's k8s.io namespace.
import_images() {
    local dir="$1" archive count=0
    [[ -d "$dir" ]] || fail "--images $dir: not a directory"
    shopt -s nullglob
    for archive in "$dir"/*.tar; do
        in_node "${BIN[ctr]}" --address /run/containerd/containerd.sock -n k8s.io \
            images import "$archive" >>"$STATE/logs/images.log" 2>&1 ||
            fail "importing $archive failed: $(tail -n 5 "$STATE/logs/images.log")"
        count=$((count + 1))
    done
    shopt -u nullglob
    ((count > 0)) || fail "--images $dir: no *.tar image archive there"
    log "imported $count image archive(s) from $dir ($((SECONDS - START))s)"
}

image_present() {
    local refs # read whole: grep -q stopping early would fail the pipeline (pipefail)
    refs="$(in_node "${BIN[ctr]}" --address /run/containerd/containerd.sock -n k8s.io images ls -q)"
    grep -qxF "$1" <<<"$refs"
}

write_env() {
    local helm_dir
    helm_dir="$(dirname "${BIN[helm]}")"
    cat >"$STATE/env.tmp" <<EOF
KUBECONFIG=$STATE/kubeconfig
CHANNELWORKS_NODE_STATE=$STATE
CHANNELWORKS_NODE_NETNS=$NETNS
CHANNELWORKS_NODE_HOLDER_PID=$(holder_pid)
CHANNELWORKS_NODE_NAME=$NODE_NAME
CHANNELWORKS_NODE_IP=$NODE_IP
CHANNELWORKS_NODE_API_SERVER=https://$NODE_IP:$API_PORT
CHANNELWORKS_NODE_CA=$STATE/pki/ca.crt
CHANNELWORKS_NODE_POD_CIDR=$POD_CIDR
CHANNELWORKS_NODE_SERVICE_CIDR=$SERVICE_CIDR
CHANNELWORKS_NODE_DNS_IP=$DNS_SERVICE_IP
CHANNELWORKS_NODE_CLUSTER_DOMAIN=$CLUSTER_DOMAIN
CHANNELWORKS_NODE_STORAGE_CLASS=$STORAGE_CLASS
CHANNELWORKS_NODE_SANDBOX_IMAGE=$SANDBOX_IMAGE
CHANNELWORKS_NODE_HELPER_IMAGE=$HELPER_IMAGE
CHANNELWORKS_NODE_LOGS=$STATE/logs
CHANNELWORKS_NODE_EXEC=$repo_root/e2e/node.sh
KUBECTL=${BIN[kubectl]}
HELM=${BIN[helm]}
EOF
    mv "$STATE/env.tmp" "$STATE/env"
}

# -- teardown ----------------------------------------------------------------------------------

# node_pids: every process of the node: those in its network namespace (the components, the
# containerd shims, anything `exec` started) and those in its cgroups (the containers).
node_pids() {
    {
        [[ ! -e "/run/netns/$NETNS" ]] || ip netns pids "$NETNS" 2>/dev/null || true
        local hierarchy
        for hierarchy in $(cgroup_mounts); do
            [[ -d "$hierarchy$CGROUP_ROOT" ]] || continue
            find "$hierarchy$CGROUP_ROOT" -name cgroup.procs -exec cat {} + 2>/dev/null || true
        done
    } | sort -un
}

kill_node_processes() {
    local pids=() deadline=$((SECONDS + 20))
    mapfile -t pids < <(node_pids)
    ((${#pids[@]} == 0)) || log "stopping ${#pids[@]} process(es)"
    while ((${#pids[@]})); do
        # Everything at once, with SIGKILL: the node's state is thrown away anyway, and nothing
        # gets the chance to restart what was just stopped (the kubelet, the shims).
        kill -KILL "${pids[@]}" 2>/dev/null || true
        ((SECONDS < deadline)) || {
            log "warning: processes still there after 20s: ${pids[*]}"
            return 1
        }
        sleep 0.1
        mapfile -t pids < <(node_pids)
    done
}

remove_cgroups() {
    local hierarchy dir
    for hierarchy in $(cgroup_mounts); do
        [[ -d "$hierarchy$CGROUP_ROOT" ]] || continue
        # Deepest first; a cgroup disappears only when its processes have.
        while read -r dir; do
            rmdir "$dir" 2>/dev/null || true
        done < <(find "$hierarchy$CGROUP_ROOT" -depth -type d)
        [[ ! -d "$hierarchy$CGROUP_ROOT" ]] || log "warning: could not remove $hierarchy$CGROUP_ROOT"
    done
}

down() {
    local start=$SECONDS
    kill_node_processes || true
    log "processes gone ($((SECONDS - start))s)"
    remove_cgroups
    if [[ -e "/run/netns/$NETNS" ]]; then
        ip netns delete "$NETNS" || log "warning: could not delete the network namespace $NETNS"
    fi
    if [[ -d "$STATE" ]]; then
        if grep -qF " $STATE/" /proc/self/mounts; then
            log "warning: mounts left under $STATE, not removing it"
        else
            rm -rf --one-file-system "$STATE" 2>/dev/null || {
                sleep 1 # the last mounts of the node's namespace may still be going away
                rm -rf --one-file-system "$STATE"
            }
        fi
    fi
    log "down ($((SECONDS - start))s)"
}

# -- commands ------------------------------------------------------------------------------------

UP_DONE=false
IMPORTING=""

on_up_exit() {
    local status=$?
    $UP_DONE && return 0
    [[ -z "$IMPORTING" ]] || kill "$IMPORTING" 2>/dev/null || true
    local keep
    keep="$(mktemp -d "${TMPDIR:-/tmp}/channelworks-node-failed.XXXXXX")"
    cp -r "$STATE/logs" "$keep/" 2>/dev/null || true
    log "up failed (exit $status); the components' logs are kept in $keep/logs; tearing down"
    down
    rm -f "$STATE.lock"
}

up() {
    local images=""
    while (($#)); do
        case "$1" in
        --images) images="${2:?--images needs a directory}"; shift 2 ;;
        --timeout) UP_TIMEOUT="${2:?--timeout needs seconds}"; shift 2 ;;
        *) fail "up: unknown argument $1" ;;
        esac
    done
    [[ -z "$images" ]] || images="$(cd "$images" && pwd)" || fail "--images: no such directory"
    find_binaries
    if [[ -f "$STATE/env" ]] && holder_alive && node_ready; then
        log "already up: $STATE/env"
        [[ -z "$images" ]] || { START=$SECONDS; import_images "$images"; }
        echo "$STATE/env"
        return 0
    fi
    if [[ -e "$STATE" || -e "/run/netns/$NETNS" ]]; then
        log "removing what a previous node left"
        down
    fi

    START=$SECONDS
    DEADLINE=$((SECONDS + UP_TIMEOUT))
    trap on_up_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    mkdir -p "$STATE"
    write_pki
    write_configs
    make_netns
    make_cgroups
    start_holder
    log "namespaces ready (holder $(holder_pid)) ($((SECONDS - START))s)"

    start_etcd
    start_containerd
    wait_until "etcd healthy" in_node curl -sf --max-time 3 http://127.0.0.1:2379/health
    start_apiserver
    wait_until "containerd answering" containerd_ok
    # The import (about a minute for the project's images) runs while the rest comes up.
    local importing=""
    if [[ -n "$images" ]]; then
        import_images "$images" &
        importing=$!
        IMPORTING=$importing
    fi
    wait_until "kube-apiserver ready" https_ok "https://127.0.0.1:$API_PORT/readyz"
    bootstrap_manifest | node_kubectl apply -f - >"$STATE/logs/bootstrap.log" 2>&1 ||
        fail "applying the bootstrap objects failed: $(cat "$STATE/logs/bootstrap.log")"
    start_controller_manager
    start_scheduler
    start_kubelet
    start_kube_proxy
    start_coredns
    start_local_path_provisioner
    wait_until "Node $NODE_NAME Ready" node_ready
    # kube-router reads its Node at start and exits when there is none yet.
    start_kube_router
    wait_until "CoreDNS answering through the kube-dns Service" cluster_dns_ok
    wait_until "kube-router healthy" in_node curl -sf --max-time 3 http://127.0.0.1:20244/healthz
    wait_until "local-path-provisioner ready" in_node curl -sf --max-time 3 http://127.0.0.1:20245/ready
    # Pods are refused until the controller-manager made the namespace's service account.
    wait_until "ServiceAccount default/default" node_kubectl get serviceaccount default -n default
    if [[ -n "$importing" ]]; then
        wait "$importing" || fail "importing the images failed (see above)"
        IMPORTING=""
    fi
    image_present "$SANDBOX_IMAGE" ||
        log "warning: the sandbox image $SANDBOX_IMAGE is not imported: pods cannot start" \
            "until it is (e2e/node.sh import DIR)"
    write_env
    UP_DONE=true
    trap - EXIT
    log "up in $((SECONDS - START))s; env file: $STATE/env"
    echo "$STATE/env"
}

require_up() {
    if ! [[ -f "$STATE/env" ]] || ! holder_alive; then
        fail "the node is not up (no $STATE/env or its holder is gone): run e2e/node.sh up"
    fi
}

exec_in_node() {
    [[ "${1:-}" != "--" ]] || shift
    (($#)) || fail "exec: no command given"
    require_up
    local env_args=() line helm_dir kubectl_dir
    while IFS= read -r line; do
        [[ -n "$line" ]] && env_args+=("$line")
    done <"$STATE/env"
    helm_dir="$(dirname "$(grep '^HELM=' "$STATE/env" | cut -d= -f2-)")"
    kubectl_dir="$(dirname "$(grep '^KUBECTL=' "$STATE/env" | cut -d= -f2-)")"
    local path="$helm_dir:$PATH"
    # A cached kubectl goes first; a system one is on PATH already (and /usr/bin first would
    # change which python3 the caller gets).
    [[ ":$SYSTEM_PATH:" == *":$kubectl_dir:"* ]] || path="$kubectl_dir:$path"
    exec nsenter --target "$(holder_pid)" --mount --net --wd="$PWD" -- \
        env "${env_args[@]}" PATH="$path" "$@"
}

main() {
    (($#)) || usage
    local command="$1"
    shift
    [[ "$STATE" = /* && "$STATE" != *[[:space:]]* ]] ||
        fail "CHANNELWORKS_NODE_STATE must be an absolute path without spaces: $STATE"
    case "$STATE" in
    /run/* | /var/lib/* | /var/log/*) fail "CHANNELWORKS_NODE_STATE may not be under /run, /var/lib or /var/log (hidden inside the node)" ;;
    esac
    [[ "$NETNS" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] ||
        fail "CHANNELWORKS_NODE_NETNS must be a plain name (letters, digits, _ . -): $NETNS"
    [[ "$command" == exec || "$command" == status ]] || {
        ((EUID == 0)) || fail "must run as root"
        # From inside the node, `down` would kill its own caller.
        [[ "$(readlink /proc/self/ns/mnt)" != "$(cat "$STATE/mntns" 2>/dev/null)" ]] ||
            fail "$command: run it on the host, not inside the node (e2e/node.sh exec)"
    }
    case "$command" in
    up | down | import)
        # One command at a time per state directory (the components never inherit the lock's
    # descriptor: `start` closes it for them).
        exec 9>"$STATE.lock"
        flock -w 600 9 || fail "another e2e/node.sh holds $STATE.lock"
        ;;
    esac
    case "$command" in
    up) up "$@" ;;
    down)
        down
        rm -f "$STATE.lock"
        ;;
    import)
        require_up
        find_binaries
        START=$SECONDS
        import_images "$(cd "${1:?import needs a directory}" && pwd)"
        ;;
    exec) exec_in_node "$@" ;;
    status)
        require_up
        cat "$STATE/env"
        ;;
    -h | --help | help) usage ;;
    *) fail "unknown command: $command (up, down, exec, import, status)" ;;
    esac
}

# Sourcing the file (tests, debugging) defines the functions without running a command.
[[ "${BASH_SOURCE[0]}" != "$0" ]] || main "$@"
