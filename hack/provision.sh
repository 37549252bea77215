#!/usr/bin/env bash
# Provisions what the tests run for real into bin/ (git-ignored):
#   - Debian packages: iptables, nftables (nft, which tests read the nftables backend's rules back
#     with; the backend itself needs none), etcd-server, containernetworking-plugins, iproute2, runc
#   - bin/etcd: Debian's etcd, linked
#   - bin/debs: the Debian packages the images install, as pinned in hack/images/debian.lock.json
#   - bin/kube-apiserver, bin/kubelet, bin/kube-controller-manager, bin/kube-scheduler: built from
#     k8s.io/kubernetes through the tools module in hack/tools (one main.go per command)
#   - bin/containerd, bin/containerd-shim-runc-v2, bin/ctr: containerd v2 from the Go module proxy
#     (test/node says why v2 and not Debian's 1.6)
# Idempotent: the .debs are fetched only when missing or not as pinned, and a stamp per binary (the
# sources' hash and the Go version) skips a build when nothing changed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/bin"
mkdir -p "$bin"

need_pkgs=()
for pair in iptables:iptables-restore nftables:nft etcd-server:etcd containernetworking-plugins:/usr/lib/cni/bridge iproute2:ip runc:runc; do
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
go_version=$(go version)
# Builds go to a directory of this run, renamed into place, so that a test running the previous
# binary is undisturbed.
tmp="$bin/.build.$$"
trap 'rm -rf "$tmp"' EXIT

# The Kubernetes commands: each one's stamp hashes the tools module, its main and the Go version.
stale=()
for cmd in kube-apiserver kubelet kube-controller-manager kube-scheduler; do
  want=$( (cat "$tools/go.mod" "$tools/go.sum" "$tools/$cmd"/*.go; echo "$go_version") | sha256sum | cut -d' ' -f1)
  if [[ ! -x $bin/$cmd || ! -f $bin/.$cmd.stamp || $(cat "$bin/.$cmd.stamp") != "$want" ]]; then
    stale+=("$cmd")
    declare "want_${cmd//-/_}=$want"
  fi
done
if ((${#stale[@]})); then
  echo "provision: building ${stale[*]} $kube_version (several minutes the first time, seconds with a warm Go cache)" >&2
  # Without a real version, clients refuse the server's placeholder "v0.0.0-master+\$Format:%H\$".
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  out="$tmp/kube" && mkdir -p "$out"
  # One go build for all of them: they share most packages, and two links at a time bound the
  # memory (about 2 GB each) on a machine others use too.
  (cd "$tools" && go build -p 2 -trimpath -ldflags "$ldflags" -o "$out/" "${stale[@]/#/./}")
  for cmd in "${stale[@]}"; do
    mv "$out/$cmd" "$bin/$cmd"
    var="want_${cmd//-/_}"
    echo "${!var}" > "$bin/.$cmd.stamp"
  done
fi

# containerd v2 from the module proxy, with Debian's runc: go install builds it from containerd's own
# go.mod, so its dependencies are exactly the release's. No btrfs, devmapper or zfs: they need cgo
# and libraries the node does not use (the overlayfs snapshotter does it all).
containerd_version=v2.4.2
containerd_tags=no_btrfs,no_devmapper,no_zfs
want=$(echo "$containerd_version $containerd_tags $go_version" | sha256sum | cut -d' ' -f1)
if [[ ! -x $bin/containerd || ! -x $bin/containerd-shim-runc-v2 || ! -x $bin/ctr || ! -f $bin/.containerd.stamp || $(cat "$bin/.containerd.stamp") != "$want" ]]; then
  echo "provision: building containerd $containerd_version (about a minute the first time)" >&2
  out="$tmp/containerd" && mkdir -p "$out"
  pkgs=()
  for cmd in containerd containerd-shim-runc-v2 ctr; do pkgs+=("github.com/containerd/containerd/v2/cmd/$cmd@$containerd_version"); done
  # The version ldflag makes containerd report its release over CRI, as the kubelet logs it.
  (cd "$out" && CGO_ENABLED=0 GOBIN="$out" go install -trimpath -tags "$containerd_tags" \
    -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$containerd_version" "${pkgs[@]}")
  for cmd in containerd containerd-shim-runc-v2 ctr; do mv "$out/$cmd" "$bin/$cmd"; done
  echo "$want" > "$bin/.containerd.stamp"
fi
