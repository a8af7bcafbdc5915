#!/usr/bin/env bash
# Run a command against a cluster: the one KUBECONFIG names if set, else a local control plane
# started for the command and stopped after it (also when it fails).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.cache/bin:$PATH"
if [ -z "${KUBECONFIG:-}" ]; then
  [ -e .cache/cluster/apiserver.pid ] && { echo "a local control plane is already up (make up); use 'make down' first or set KUBECONFIG" >&2; exit 1; }
  trap 'hack/cluster.sh down' EXIT
  hack/cluster.sh up
  export KUBECONFIG="$PWD/.cache/cluster/kubeconfig"
  echo "control plane: $(kube-apiserver --version), kube-controller-manager $(kube-controller-manager --version | awk '{print $2}'), $(etcd --version | head -1)"
fi
"$@"
