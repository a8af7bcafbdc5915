#!/usr/bin/env bash
# Run a command against a cluster: the one KUBECONFIG names if set, else a local one started for
# the command and stopped after it (also when it fails). With TENANTLINE_NODE=1 the local cluster
# has a node; after it stops, anything the node left behind fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.cache/bin:$PATH"
if [ -z "${KUBECONFIG:-}" ]; then
  [ -e .cache/cluster/apiserver.pid ] && { echo "a local control plane is already up (make up); use 'make down' first or set KUBECONFIG" >&2; exit 1; }
  stop() {
    local rc=$?
    hack/cluster.sh down
    if [ "${TENANTLINE_NODE:-0}" = 1 ]; then
      echo "after make down: $(hack/node.sh leftovers | paste -sd ';')"
      hack/node.sh leftovers >/dev/null || rc=1
    fi
    exit $rc
  }
  trap stop EXIT
  hack/cluster.sh up
  export KUBECONFIG="$PWD/.cache/cluster/kubeconfig"
  echo "control plane: $(kube-apiserver --version), kube-controller-manager $(kube-controller-manager --version | awk '{print $2}'), $(etcd --version | head -1)"
fi
"$@"
