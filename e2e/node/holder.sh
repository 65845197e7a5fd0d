#!/usr/bin/env bash
# The node's namespace holder: run by e2e/node.sh as
#   nsenter --net=/run/netns/NETNS -- unshare --mount --propagation slave -- holder.sh STATE
# so it starts inside the node's network namespace and a new, private mount namespace whose
# mounts do not propagate back to the host. It prepares that mount namespace for the node's
# components, writes its PID to STATE/holder.pid and then sleeps for as long as the node lives:
# every component is started with `nsenter --target <holder> --mount --net`.
# See docs/testing-real-node.md for why each mount is there.
set -euo pipefail

state="$1"

# Paths that containerd, the kubelet and the CNI plugins hard-code stay off the host.
for dir in /run /var/lib /var/log; do
    mount -t tmpfs -o mode=0755 tmpfs "$dir"
done

# Name resolution of the node's own processes: the node name maps to the node IP; no name server,
# so nothing asks the host's resolver (glibc and Go then try 127.0.0.1:53, where CoreDNS answers
# for cluster.local once it runs).
mount --bind "$state/etc/hosts" /etc/hosts
mount --bind "$state/etc/resolv.conf" /etc/resolv.conf

# Host-wide kernel settings the kubelet would otherwise rewrite: it writes them only when they do
# not already hold its values, so read-only files with those values are bound over them here.
for entry in "$state"/sysctl/*; do
    target="/proc/sys/$(basename "$entry" | tr . /)"
    mount --bind "$entry" "$target"
    mount -o remount,bind,ro "$target"
done

echo "$$" >"$state/holder.pid.tmp"
mv "$state/holder.pid.tmp" "$state/holder.pid"
exec sleep infinity
