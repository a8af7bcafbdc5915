#!/usr/bin/env bash
# make demo: tenantline as users install it, one command away. A local control plane with a node
# (hack/cluster.sh, TENANTLINE_NODE=1: kubelet, containerd, kube-proxy, CoreDNS), both images
# loaded on it (make load), the chart installed (helm), tenantline-sim running in the cluster
# (examples/simulator) and examples/in-cluster (the quickstart, its endpoints on the simulator's
# Service), until every resource is Ready; then what happened and what to try next.
#
# The cluster stays up (make down stops it); with KEEP=0 it is stopped at the end, and then
# nothing may be left behind. A local cluster that is already up with a node (an earlier make
# demo, make up NODE=1) is used as it is. With KUBECONFIG set, that cluster is used instead: the
# images go onto kind's nodes with KIND_CLUSTER=<name>, else they must be there already (README,
# "Getting the images onto a cluster"), and KEEP=0 removes what the demo installed.
#
# The images (make image) must be built first: `make demo` does that.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.cache/bin:$PATH"
KEEP=${KEEP:-1}
VERSION=$(awk -F'"' '/^version = / {print $2; exit}' Cargo.toml)
NS=tenantline-demo         # examples/quickstart's namespace
SYSTEM=tenantline-system   # the operator's
SIM_NS=tenantline-sim      # the simulator's (examples/simulator)
RELEASE=tenantline         # so the Deployment is deployment/tenantline
KINDS=providerconfigs,subaccounts,teammembers,phonenumbers
SIM_API="/api/v1/namespaces/$SIM_NS/services/tenantline-sim:8787/proxy/_sim"   # its control API, through the API server
start=$SECONDS
step() { printf '\n--- [%ss] %s\n' "$((SECONDS - start))" "$*"; }

local_cluster=0
finish() {
  local rc=$?
  trap - EXIT
  if [ "$KEEP" = 0 ]; then
    step "KEEP=0: tearing down"
    if [ "$local_cluster" = 1 ]; then
      hack/cluster.sh down
      echo "after make down: $(hack/node.sh leftovers | paste -sd ';')"
      hack/node.sh leftovers >/dev/null || rc=1
    else
      # The operator still runs while the examples go: their finalizers delete at the provider.
      kubectl delete namespace "$NS" --ignore-not-found --timeout=120s || rc=1
      helm uninstall "$RELEASE" -n "$SYSTEM" --wait || rc=1
      kubectl delete namespace "$SIM_NS" "$SYSTEM" --ignore-not-found --timeout=120s || rc=1
    fi
  elif [ "$local_cluster" = 1 ] && [ "$rc" != 0 ]; then
    if [ -e .cache/cluster/apiserver.pid ] && kill -0 "$(cat .cache/cluster/apiserver.pid)" 2>/dev/null; then
      echo "the demo failed; the cluster is left up to look at (eval \"\$(make env)\"); make down stops it" >&2
    else
      hack/cluster.sh down >/dev/null   # what a failed start left
    fi
  fi
  exit "$rc"
}
trap finish EXIT

if [ -z "${KUBECONFIG:-}" ] || [ "$KUBECONFIG" = "$PWD/.cache/cluster/kubeconfig" ]; then
  export KUBECONFIG="$PWD/.cache/cluster/kubeconfig"
  if [ -e .cache/cluster/apiserver.pid ] && kill -0 "$(cat .cache/cluster/apiserver.pid)" 2>/dev/null; then
    [ -e .cache/cluster/node ] || { echo "a local control plane without a node is up (make up): make down first, or make up NODE=1" >&2; exit 1; }
    local_cluster=1
    step "the local cluster is already up (an earlier make demo, or make up NODE=1): using it"
  else
    local_cluster=1
    step "a local control plane with a node: etcd, kube-apiserver, kube-controller-manager; kube-scheduler, kubelet, containerd, kube-proxy, CoreDNS"
    TENANTLINE_NODE=1 hack/cluster.sh up
  fi
fi

archives=(".cache/image/tenantline-$VERSION.tar" ".cache/image/tenantline-sim-$VERSION.tar")
if [ "$local_cluster" = 1 ]; then
  step "both images onto the node (make load): $(hack/image.sh --ref), $(hack/image.sh --sim-ref)"
  for archive in "${archives[@]}"; do
    [ -f "$archive" ] || { echo "$archive missing: make image (make demo builds it)" >&2; exit 1; }
    hack/node.sh load "$archive"
  done
elif [ -n "${KIND_CLUSTER:-}" ]; then
  step "both images onto kind's nodes (make load KIND_CLUSTER=$KIND_CLUSTER)"
  for archive in "${archives[@]}"; do kind load image-archive "$archive" --name "$KIND_CLUSTER"; done
else
  step "KUBECONFIG is set: using that cluster, whose nodes must have $(hack/image.sh --ref) and $(hack/image.sh --sim-ref)"
fi

step "the operator: helm install $RELEASE charts/tenantline -n $SYSTEM (allowInsecureEndpoints: the simulator speaks plain http)"
helm upgrade --install "$RELEASE" charts/tenantline -n "$SYSTEM" --create-namespace \
  --set allowInsecureEndpoints=true --set logFormat=text --wait --timeout 180s >/dev/null
kubectl -n "$SYSTEM" get deployment,pods -l app.kubernetes.io/instance="$RELEASE" -o wide

step "the provider simulator: kubectl apply -k examples/simulator"
kubectl apply -k examples/simulator
kubectl -n "$SIM_NS" rollout status deployment/tenantline-sim --timeout=120s

step "the examples: kubectl apply --server-side -k examples/in-cluster (examples/quickstart, endpoints on http://tenantline-sim.$SIM_NS.svc.cluster.local:8787)"
kubectl apply --server-side -k examples/in-cluster
if ! kubectl wait --for=condition=Ready --timeout=180s -n "$NS" "$KINDS" --all >/dev/null; then
  kubectl get tenantline -n "$NS" -o wide || true
  echo "--- the operator's log (tail)"; kubectl -n "$SYSTEM" logs "deployment/$RELEASE" --tail=40 || true
  echo "--- the simulator's log (tail)"; kubectl -n "$SIM_NS" logs deployment/tenantline-sim --tail=20 || true
  exit 1
fi

step "every resource is Ready"
# shellcheck disable=SC2016 # jsonpath, for kubectl, not the shell
kubectl get "$KINDS" -n "$NS" -o custom-columns='KIND:.kind,NAME:.metadata.name,READY:.status.conditions[?(@.type=="Ready")].status,REASON:.status.conditions[?(@.type=="Ready")].reason,MESSAGE:.status.conditions[?(@.type=="Ready")].message'
echo
echo "What the operator did (its Events, oldest first):"
events=$(kubectl get events -n "$NS" --sort-by=.metadata.creationTimestamp --no-headers \
  -o custom-columns='OBJECT:.involvedObject.kind,NAME:.involvedObject.name,REASON:.reason,MESSAGE:.message')
if [ -n "$events" ]; then
  cut -c1-160 <<<"$events"
else
  echo "  none recorded: kubectl -n $SYSTEM logs deployment/$RELEASE says why"
fi
echo
echo "What the provider now holds (the simulator's /_sim/state, through the API server):"
kubectl get --raw "$SIM_API/state" | python3 -c '
import json, sys
state = json.load(sys.stdin)
for provider, kinds in state.items():
    counts = ", ".join(f"{len(v)} {k}" for k, v in kinds.items() if isinstance(v, list) and v and k not in ("inventory", "partners"))
    print(f"  {provider}: {counts}")'
echo
echo "Credentials, one Secret per SubAccount (status.credentialsSecretName; keys only):"
# shellcheck disable=SC2016 # go-template variables, for kubectl, not the shell
for row in $(kubectl get subaccounts -n "$NS" -o go-template='{{range .items}}{{.metadata.name}}={{.status.credentialsSecretName}} {{end}}'); do
  printf '  %-18s secret/%s: %s\n' "${row%%=*}" "${row#*=}" \
    "$(kubectl get secret "${row#*=}" -n "$NS" -o go-template='{{range $k, $v := .data}}{{$k}} {{end}}')"
done

step "demo complete in $((SECONDS - start))s: every resource is Ready"
[ "$KEEP" = 0 ] && exit 0
echo
echo "What to try next:"
if [ "$local_cluster" = 1 ]; then
  # shellcheck disable=SC2016 # printed for the reader to run
  echo '  eval "$(make env)"      # in another shell: kubectl and helm on this cluster'
fi
cat <<EOF
  kubectl get subaccounts -A -o wide                       # provider, account id, state, Secret
  kubectl -n $NS describe subaccount acme-lending   # conditions; status.deletion: what deleting does
  kubectl -n $NS patch subaccount acme-lending --type merge -p '{"spec":{"displayName":"Acme Lending EU"}}'
      # the edit reaches the provider: the account's name in the simulator's state (below)

  # A delete the provider refuses: the finalizer keeps the SubAccount (and its number) until it can finish.
  SIM=$SIM_API
  echo '{"provider":"agentphone","method":"DELETE","fault":{"kind":"status","status":503}}' | kubectl create --raw \$SIM/faults -f -
  kubectl -n $NS delete subaccount acme-marketing --wait=false
  kubectl -n $NS get subaccounts,phonenumbers     # acme-marketing: Deleting (describe says why)
  kubectl delete --raw \$SIM/faults       # the provider is back: at its next retry the SubAccount goes

  kubectl -n $SYSTEM logs deployment/$RELEASE -f     # the operator's log
  kubectl get --raw \$SIM/state                   # what the provider holds
EOF
if [ "$local_cluster" = 1 ]; then
  echo "  make down               # stop the cluster; nothing is left behind"
fi
