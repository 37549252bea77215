#!/usr/bin/env bash
# Provisions what the tests run for real into bin/ (git-ignored):
#   - Debian packages: iptables, etcd-server, containernetworking-plugins, iproute2
#   - bin/etcd: Debian's etcd, linked
#   - bin/debs: the Debian packages the images install, as pinned in hack/images/debian.lock.json
#   - bin/kube-apiserver: built from k8s.io/kubernetes through the tools module in hack/tools
# Idempotent: the .debs are fetched only when missing or not as pinned, and a stamp (the tools
# module's hash and the Go version) skips the build when nothing changed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/bin"
mkdir -p "$bin"

need_pkgs=()
for pair in iptables:iptables-restore etcd-server:etcd containernetworking-plugins:/usr/lib/cni/bridge iproute2:ip; do
  pkg=${pair%%:*} probe=${pair#*:}
  if [[ $probe == /* ]]; then [[ -e $probe ]] || need_pkgs+=("$pkg")
  else command -v "$probe" >/dev/null 2>&1 || need_pkgs+=("$pkg"); fi
done
if ((${#need_pkgs[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "provision: missing Debian packages ${need_pkgs[*]}; run as root or: apt-get install ${need_pkgs[*]}" >&2
    exit 1
  fi
  echo "provision: installing ${need_pkgs[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >/dev/null; }
  # Debian starts an etcd service on install; the tests start their own.
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now etcd >/dev/null 2>&1 || true; fi
fi

ln -sf "$(command -v etcd)" "$bin/etcd"

(cd "$root" && go run ./hack/images fetch)

tools="$root/hack/tools"
kube_version=$(sed -n 's/^require k8s.io\/kubernetes \(v[0-9.]*\)$/\1/p;s/^\tk8s.io\/kubernetes \(v[0-9.]*\)$/\1/p' "$tools/go.mod" | head -n1)
[[ $kube_version =~ ^v1\.([0-9]+)\.[0-9]+$ ]] || { echo "provision: cannot read the k8s.io/kubernetes version from $tools/go.mod" >&2; exit 1; }
minor=${BASH_REMATCH[1]}
stamp="$bin/.kube-apiserver.stamp"
want=$( (cat "$tools/go.mod" "$tools/go.sum" "$tools"/kube-apiserver/*.go; go version) | sha256sum | cut -d' ' -f1)
if [[ -x $bin/kube-apiserver && -f $stamp && $(cat "$stamp") == "$want" ]]; then
  exit 0
fi

echo "provision: building kube-apiserver $kube_version (a few minutes the first time)" >&2
# Without a real version, clients refuse the server's placeholder "v0.0.0-master+\$Format:%H\$".
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done
(cd "$tools" && go build -trimpath -ldflags "$ldflags" -o "$bin/kube-apiserver.tmp" ./kube-apiserver)
mv "$bin/kube-apiserver.tmp" "$bin/kube-apiserver"
echo "$want" > "$stamp"
