#!/usr/bin/env bash
# Stops what up.sh started (reverse order, by recorded PID) and leaves nothing behind: pod containers,
# the kubelet's mounts, kube-proxy's iptables rules and the Service range's local route.
# Usage: down.sh [RUN_DIR]
R=${1:-/tmp/shipit-k8s}
export KUBECONFIG=$R/kubeconfig
K=${KUBECTL:-kubectl}
[ -f "$R/pids" ] || exit 0
# Workloads first, so the kubelet tears their pods down (else containers and tmpfs mounts stay).
for ns in $($K get namespaces -o name 2>/dev/null | sed 's|namespace/||' | grep -v '^kube-'); do
  $K delete deployments,replicasets,pods --all -n "$ns" --wait=false >/dev/null 2>&1
done
$K wait --for=delete pods --all --all-namespaces --timeout=60s >/dev/null 2>&1
tac "$R/pids" | while read -r _name pid; do
  kill "$pid" 2>/dev/null && for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
done
: > "$R/pids"; rm -f "$R/pids"
docker ps -aq --filter name=k8s_ | xargs -r docker rm -f >/dev/null
B=$(find "${SHIPIT_K8S_CACHE:-/var/cache/shipit/k8s-test-cluster}" -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | head -1)
[ -x "$B/kube-proxy" ] && "$B/kube-proxy" --cleanup >/dev/null 2>&1
ip route del local 10.0.0.0/24 dev lo table local 2>/dev/null
ip addr del 10.0.1.1/32 dev lo 2>/dev/null
for m in $(awk -v r="$R/kubelet-root" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r); do umount "$m"; done
# The marker chains the kubelet and kube-proxy leave (KUBE-MARK-*, *-CANARY).
for t in nat filter mangle; do
  iptables -t $t -S 2>/dev/null | awk '$1=="-A" && $2 !~ /^KUBE-/ && / -j KUBE-/ {sub(/^-A/, "-D"); print}' |
    while read -r rule; do eval iptables -t $t "$rule" 2>/dev/null; done
  for c in $(iptables -t $t -S 2>/dev/null | awk '$1=="-N" && $2 ~ /^KUBE-/ {print $2}'); do iptables -t $t -F "$c" 2>/dev/null; done
  for c in $(iptables -t $t -S 2>/dev/null | awk '$1=="-N" && $2 ~ /^KUBE-/ {print $2}'); do iptables -t $t -X "$c" 2>/dev/null; done
done
rm -rf "$R/etcd-data" "$R/kubelet-root" "$R/kubelet-pki"
docker rmi local/pause:3.2 >/dev/null 2>&1
echo "cluster down"
