#!/usr/bin/env bash
# Starts the test cluster on this machine, all on 127.0.0.1: etcd (Debian's), kube-apiserver,
# kube-controller-manager, kube-scheduler, a kubelet running pods on the local Docker engine (dockershim)
# and kube-proxy (iptables), all v1.20.2 from build.sh's cache. About 20 s.
# Usage: up.sh [RUN_DIR]   (default /tmp/shipit-k8s). Writes RUN_DIR/kubeconfig (context "shipit-test")
# and RUN_DIR/pids; down.sh RUN_DIR stops it all.
# The Service range 10.0.0.0/24 is made a LOCAL route first: a Service IP without a kube-proxy rule
# fails here (connection refused) and nothing is ever sent off the machine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
R=${1:-/tmp/shipit-k8s}
B=$(bash "$here/build.sh" | tail -1)
K=${KUBECTL:-kubectl}
mkdir -p "$R"; cd "$R"
: > pids
rm -rf etcd-data kubelet-root kubelet-pki

docker image inspect local/pause:3.2 >/dev/null 2>&1 ||
  docker import -c 'ENTRYPOINT ["/pause"]' "$B/pause.tar" local/pause:3.2 >/dev/null

# A throw-away CA, serving certificate, service-account key and static token (user admin, system:masters).
if [ ! -f ca.crt ]; then
  openssl genrsa -out sa.key 2048 2>/dev/null; openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 30 -subj /CN=shipit-test-ca 2>/dev/null
  printf '[req]\ndistinguished_name=dn\n[dn]\n[ext]\nsubjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > san.cnf
  openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj /CN=kube-apiserver 2>/dev/null
  openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 30 \
    -extfile san.cnf -extensions ext 2>/dev/null
  echo "$(openssl rand -hex 16),admin,admin,system:masters" > tokens.csv
fi
# The API server's client certificate for the kubelet (logs, exec, attach go through the kubelet).
if [ ! -f kubelet-client.crt ]; then
  openssl req -newkey rsa:2048 -nodes -keyout kubelet-client.key -out kubelet-client.csr \
    -subj "/O=system:masters/CN=kube-apiserver-kubelet-client" 2>/dev/null
  printf '[ext]\nextendedKeyUsage=clientAuth\n' > client.cnf
  openssl x509 -req -in kubelet-client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out kubelet-client.crt \
    -days 30 -extfile client.cnf -extensions ext 2>/dev/null
fi
token=$(cut -d, -f1 tokens.csv)
cat > kubeconfig <<CFG
apiVersion: v1
kind: Config
clusters: [{name: shipit-test, cluster: {server: "https://127.0.0.1:16443", certificate-authority: $R/ca.crt}}]
users: [{name: admin, user: {token: $token}}]
contexts: [{name: shipit-test, context: {cluster: shipit-test, user: admin}}]
current-context: shipit-test
CFG
chmod 600 kubeconfig tokens.csv
export KUBECONFIG=$R/kubeconfig

etcd --name shipit-test --data-dir "$R/etcd-data" \
  --listen-client-urls http://127.0.0.1:23790 --advertise-client-urls http://127.0.0.1:23790 \
  --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
  --initial-cluster shipit-test=http://127.0.0.1:23800 > etcd.log 2>&1 &
echo "etcd $!" >> pids

"$B/bin/kube-apiserver" --etcd-servers=http://127.0.0.1:23790 \
  --bind-address=127.0.0.1 --secure-port=16443 --advertise-address=127.0.0.1 --endpoint-reconciler-type=none \
  --insecure-port=0 --tls-cert-file=apiserver.crt --tls-private-key-file=apiserver.key --client-ca-file=ca.crt \
  --token-auth-file=tokens.csv --authorization-mode=Node,RBAC \
  --kubelet-client-certificate=kubelet-client.crt --kubelet-client-key=kubelet-client.key \
  --kubelet-preferred-address-types=InternalIP \
  --service-account-key-file=sa.pub --service-account-signing-key-file=sa.key \
  --service-account-issuer=https://kubernetes.default.svc --service-cluster-ip-range=10.0.0.0/24 \
  > apiserver.log 2>&1 &
echo "kube-apiserver $!" >> pids
t0=$(date +%s)
until curl -sf --cacert ca.crt -H "Authorization: Bearer $token" https://127.0.0.1:16443/readyz >/dev/null; do
  sleep 0.5; [ $(( $(date +%s) - t0 )) -lt 90 ] || { echo "apiserver not ready; see $R/apiserver.log" >&2; exit 1; }; done

"$B/bin/kube-controller-manager" --kubeconfig="$R/kubeconfig" --bind-address=127.0.0.1 --secure-port=10257 --port=0 \
  --service-account-private-key-file="$R/sa.key" --root-ca-file="$R/ca.crt" --use-service-account-credentials=true \
  --leader-elect=false --controllers='*,-nodeipam,-service,-route,-cloud-node-lifecycle' \
  --service-cluster-ip-range=10.0.0.0/24 > kcm.log 2>&1 &
echo "kube-controller-manager $!" >> pids

"$B/bin/kube-scheduler" --kubeconfig="$R/kubeconfig" --bind-address=127.0.0.1 --secure-port=10259 --port=0 \
  --leader-elect=false > sched.log 2>&1 &
echo "kube-scheduler $!" >> pids

# The node's address: the kubelet refuses a loopback one, and the API server reaches the kubelet
# there for logs, exec and attach. A /32 on lo: nothing leaves the machine.
NODE_IP=10.0.1.1
ip addr replace "$NODE_IP/32" dev lo
cat > kubelet-config.yaml <<CFG
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
cgroupDriver: cgroupfs
failSwapOn: false
cgroupsPerQOS: false
enforceNodeAllocatable: []
oomScoreAdj: 0
authentication: {anonymous: {enabled: false}, webhook: {enabled: false}, x509: {clientCAFile: $R/ca.crt}}
authorization: {mode: AlwaysAllow}
evictionHard: {}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
# No DNS runs in this cluster: pods get this (unanswered) resolver rather than a MissingClusterDNS warning.
clusterDNS: [10.0.0.10]
clusterDomain: cluster.local
CFG
mkdir -p kubelet-root
"$B/bin/kubelet" --kubeconfig="$R/kubeconfig" --config="$R/kubelet-config.yaml" --root-dir="$R/kubelet-root" \
  --cert-dir="$R/kubelet-pki" --hostname-override=shipit-node --node-ip="$NODE_IP" \
  --container-runtime=docker --pod-infra-container-image=local/pause:3.2 -v=1 > kubelet.log 2>&1 &
echo "kubelet $!" >> pids

ip route replace local 10.0.0.0/24 dev lo table local
cat > kube-proxy-config.yaml <<CFG
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $R/kubeconfig}
mode: iptables
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
hostnameOverride: shipit-node
clusterCIDR: 172.17.0.0/16
conntrack: {maxPerCore: 0}
CFG
"$B/bin/kube-proxy" --config="$R/kube-proxy-config.yaml" > kube-proxy.log 2>&1 &
echo "kube-proxy $!" >> pids

t0=$(date +%s)
until $K get node shipit-node 2>/dev/null | grep -q ' Ready'; do
  sleep 1; [ $(( $(date +%s) - t0 )) -lt 90 ] || { echo "node not Ready; see $R/kubelet.log" >&2; exit 1; }; done
# The default ServiceAccount that every namespace gets comes from the controller-manager.
echo "cluster up: KUBECONFIG=$R/kubeconfig ($(( $(date +%s) - t0 )) s for the node)"
