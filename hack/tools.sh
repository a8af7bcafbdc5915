#!/usr/bin/env bash
# Builds the local cluster's parts and the test tools from their official Go modules into
# .cache/bin, once per version: kube-apiserver, kube-controller-manager, kubectl, and for the node
# kube-scheduler, kubelet and kube-proxy (k8s.io/kubernetes) and CoreDNS (github.com/coredns/coredns,
# with only the plugins hack/coredns imports), etcd (go.etcd.io/etcd/server/v3), helm
# (helm.sh/helm/v4), crictl (sigs.k8s.io/cri-tools), actionlint (github.com/rhysd/actionlint),
# and for the GitOps tests Flux's source-controller and kustomize-controller (hack/flux) and
# controller-gen (hack/flux-crds). A second run builds nothing. Crossplane's provider-http
# (hack/provider-http, the peer of `make bench PEER=1`) is built only when named. shellcheck (for
# make lint) is not built: Debian's package is installed when it is missing from PATH.
#
#   hack/tools.sh                 everything but provider-http
#   hack/tools.sh kubectl helm    only the tools named ("flux": the Flux controllers and controller-gen)
#   hack/tools.sh provider-http   only provider-http
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$PWD/.cache/bin"
mkdir -p "$BIN"
ONLY=" $* "
ONLY=${ONLY/ flux / source-controller kustomize-controller controller-gen }

# version <module dir> <module path>: the version the module dir pins.
version() { (cd "hack/$1" && go list -m -f '{{.Version}}' "$2"); }

# build <module dir> <package> <name> <version> [ldflags]
build() {
  local dir=$1 pkg=$2 name=$3 ver=$4 ldflags=${5:-}
  local out="$BIN/$name-$ver"
  [ "$ONLY" = "  " ] || [[ "$ONLY" == *" $name "* ]] || return 0
  if [ ! -x "$out" ]; then
    echo "building $name $ver (once; cached in .cache/bin)"
    local start=$SECONDS
    (cd "hack/$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$out.tmp" "$pkg")
    mv "$out.tmp" "$out"
    echo "built $name in $((SECONDS - start))s"
  fi
  ln -sf "$name-$ver" "$BIN/$name"
}

# make lint's shellcheck (Haskell, no Go module to build it from): Debian's package, when missing.
install_shellcheck() {
  [ "$ONLY" = "  " ] || [[ "$ONLY" == *" shellcheck "* ]] || return 0
  if command -v shellcheck >/dev/null; then return 0; fi
  echo "installing shellcheck (Debian package)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends shellcheck >/dev/null
}

# GitOps (issue 10): Flux's source-controller and kustomize-controller, run as host processes by
# tests/e2e/gitops.rs. One module (hack/flux) pins both, so their shared dependencies build once.
# controller-gen (hack/flux-crds) generates the HelmRelease CRD for the examples' dry-run test.
flux() {
  local sc kc cg
  sc=$(version flux github.com/fluxcd/source-controller)
  kc=$(version flux github.com/fluxcd/kustomize-controller)
  cg=$(version flux-crds sigs.k8s.io/controller-tools)
  build flux github.com/fluxcd/source-controller source-controller "$sc"
  build flux github.com/fluxcd/kustomize-controller kustomize-controller "$kc"
  build flux-crds sigs.k8s.io/controller-tools/cmd/controller-gen controller-gen "$cg"
}


K8S=$(version kubernetes k8s.io/kubernetes)
ETCD=$(version etcd go.etcd.io/etcd/server/v3)
COREDNS=$(version coredns github.com/coredns/coredns)
HELM=$(version helm helm.sh/helm/v4)
CRICTL=$(version cri-tools sigs.k8s.io/cri-tools)
ACTIONLINT=$(version actionlint github.com/rhysd/actionlint)

# What `--version` prints: k8s's own build stamps these from git, which a module build has not.
minor=${K8S#v1.}; minor=${minor%%.*}
stamp="-X k8s.io/component-base/version.gitVersion=$K8S -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
stamp="$stamp -X k8s.io/client-go/pkg/version.gitVersion=$K8S -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"

build kubernetes k8s.io/kubernetes/cmd/kube-apiserver kube-apiserver "$K8S" "$stamp"
build kubernetes k8s.io/kubernetes/cmd/kube-controller-manager kube-controller-manager "$K8S" "$stamp"
build kubernetes k8s.io/kubernetes/cmd/kubectl kubectl "$K8S" "$stamp"
build kubernetes k8s.io/kubernetes/cmd/kube-scheduler kube-scheduler "$K8S" "$stamp"
build kubernetes k8s.io/kubernetes/cmd/kubelet kubelet "$K8S" "$stamp"
build kubernetes k8s.io/kubernetes/cmd/kube-proxy kube-proxy "$K8S" "$stamp"
build etcd . etcd "$ETCD"
build coredns . coredns "$COREDNS"
build helm helm.sh/helm/v4/cmd/helm helm "$HELM" "-X helm.sh/helm/v4/internal/version.version=$HELM"
build cri-tools sigs.k8s.io/cri-tools/cmd/crictl crictl "$CRICTL"
build actionlint github.com/rhysd/actionlint/cmd/actionlint actionlint "$ACTIONLINT"
install_shellcheck
flux

# The peer benchmark (issue 9, `make bench PEER=1`, benches/peer.rs): Crossplane's provider-http,
# run as a host process. Only when named: a bare run (CI's) neither builds nor resolves it. The
# bench reads its CRDs from the module cache.
if [[ "$ONLY" == *" provider-http "* ]]; then
  build provider-http github.com/crossplane-contrib/provider-http/cmd/provider provider-http \
    "$(version provider-http github.com/crossplane-contrib/provider-http)"
fi
