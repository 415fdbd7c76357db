#!/usr/bin/env bash
# Builds the test cluster's binaries - kube-apiserver, kube-controller-manager, kube-scheduler, kubelet
# and kube-proxy v1.20.2 - from Debian bookworm's `kubernetes` source package, with Debian's Go 1.19,
# plus a static pause image. Only Debian's packages are used: no Go proxy, no GitHub, no registry.
#
# The binaries are cached outside the checkout, keyed by the source package's version:
#   $SHIPIT_K8S_CACHE/<version>/bin   (default /var/cache/shipit/k8s-test-cluster)
# A cache that holds all five binaries is used as is: about 7 minutes the first time on 2 cores, 0 after.
# Prints the cache directory on its last line.
#
# Two patches, both for this kind of machine (see NOTES in the README's "Kubernetes" section):
#  - reflect2 v1.0.1, vendored, crashes at run time when built with Go >= 1.18: Debian's v1.0.2 replaces it;
#  - root lacks CAP_SYS_RESOURCE here, so runc cannot set a negative oom_score_adj, and the dockershim
#    hard-codes -998 for the pause container: the kubelet is patched to use 0 for it, 1 for Guaranteed
#    pods and at least 2 for Burstable ones (upstream: -998, -997 and 3).
set -euo pipefail
CACHE=${SHIPIT_K8S_CACHE:-/var/cache/shipit/k8s-test-cluster}
BINS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)

export DEBIAN_FRONTEND=noninteractive
pkgs=()
[ -x /usr/lib/go-1.19/bin/go ] || pkgs+=(golang-1.19-go)
command -v etcd >/dev/null 2>&1 || pkgs+=(etcd-server)
command -v rsync >/dev/null 2>&1 || pkgs+=(rsync)
command -v jq >/dev/null 2>&1 || pkgs+=(jq)
command -v gcc >/dev/null 2>&1 || pkgs+=(gcc libc6-dev)
command -v iptables >/dev/null 2>&1 || pkgs+=(iptables)
[ -d /usr/share/gocode/src/github.com/modern-go/reflect2 ] || pkgs+=(golang-github-modern-go-reflect2-dev)
if [ "${#pkgs[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${pkgs[*]}" >&2
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi

# The source package through a private deb-src list (the system's sources are left as they are).
APT=$CACHE/apt
mkdir -p "$APT/sources.list.d" "$APT/lists/partial" "$APT/cache/archives/partial"
sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources > "$APT/sources.list.d/src.sources"
APTOPTS=(-o Dir::Etc::sourcelist=/dev/null -o "Dir::Etc::sourceparts=$APT/sources.list.d"
         -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache")
apt-get "${APTOPTS[@]}" update -qq
VERSION=$(apt-cache "${APTOPTS[@]}" showsrc kubernetes | sed -n 's/^Version: //p' | sort -V | tail -1)
[ -n "$VERSION" ] || { echo "no kubernetes source package found" >&2; exit 1; }
# The key also names the patches' revision: a cache built with other patches is not used.
PATCHES=2
OUT=$CACHE/$VERSION-patches$PATCHES

have_all() { for b in "${BINS[@]}"; do [ -x "$OUT/bin/$b" ] || return 1; done; [ -s "$OUT/pause.tar" ]; }
if have_all; then
  echo "cached: $OUT (kubernetes source $VERSION)" >&2
  echo "$OUT"; exit 0
fi

WORK=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
apt-get "${APTOPTS[@]}" source --download-only "kubernetes=$VERSION" >/dev/null
tar xzf kubernetes_*.orig.tar.gz
cd kubernetes-*/

rm -rf vendor/github.com/modern-go/reflect2 && mkdir vendor/github.com/modern-go/reflect2
cp /usr/share/gocode/src/github.com/modern-go/reflect2/*.go /usr/share/gocode/src/github.com/modern-go/reflect2/*.s \
   vendor/github.com/modern-go/reflect2/
rm -f vendor/github.com/modern-go/reflect2/*_test.go
sed -i 's/defaultSandboxOOMAdj\( *\)int = -998/defaultSandboxOOMAdj\1int = 0/' pkg/kubelet/dockershim/docker_sandbox.go
sed -i 's/guaranteedOOMScoreAdj int = -997/guaranteedOOMScoreAdj int = 1/' pkg/kubelet/qos/policy.go
# Burstable pods get at least 1000 + guaranteedOOMScoreAdj, which is 1001 now and out of range
# ("Invalid value 1001, range for oom score adj is [-1000, 1000]"): their floor becomes 2.
sed -i 's/(1000 + guaranteedOOMScoreAdj)/(1 + guaranteedOOMScoreAdj)/g' pkg/kubelet/qos/policy.go
grep -q 'defaultSandboxOOMAdj *int = 0' pkg/kubelet/dockershim/docker_sandbox.go
grep -q 'guaranteedOOMScoreAdj int = 1' pkg/kubelet/qos/policy.go
grep -q '(1 + guaranteedOOMScoreAdj)' pkg/kubelet/qos/policy.go

export PATH=/usr/lib/go-1.19/bin:$PATH HOME=${HOME:-/root} CGO_ENABLED=0
echo "building kubernetes $VERSION (about 7 minutes on 2 cores)" >&2
make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler cmd/kubelet cmd/kube-proxy" >&2

gcc -Os -static -DVERSION=v3.2-local -o pause build/pause/linux/pause.c && strip pause
tar cf pause.tar pause

rm -rf "$OUT.new" && mkdir -p "$OUT.new/bin"
for b in "${BINS[@]}"; do cp "_output/bin/$b" "$OUT.new/bin/"; done
cp pause.tar "$OUT.new/"
rm -rf "$OUT" && mv "$OUT.new" "$OUT"
echo "built: $OUT" >&2
echo "$OUT"
