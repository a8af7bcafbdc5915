#!/usr/bin/env bash
# The main job (make demo): tenantline-sim, the CRDs, the operator and examples/quickstart on the
# cluster in KUBECONFIG, until every resource is Ready; then it shows them and cleans up.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.cache/bin:$PATH"
LOGS=.cache/demo
NS=tenantline-demo
mkdir -p "$LOGS"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

pids=()
cleanup() {
  echo "--- cleaning up (the operator deletes what it created before it stops)"
  kubectl delete namespace "$NS" --ignore-not-found --timeout=90s >/dev/null 2>&1 || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

echo "--- tenantline-sim on 127.0.0.1:8787 (the examples' endpoints point there)"
target/debug/tenantline-sim --listen 127.0.0.1:8787 >"$LOGS/sim.log" 2>&1 &
pids+=($!)

echo "--- CRDs"
kubectl apply --server-side -f crds/tenantline.io.yaml >/dev/null
kubectl wait --for=condition=Established --timeout=60s -f crds/tenantline.io.yaml >/dev/null

echo "--- the operator (log: $LOGS/operator.log)"
target/debug/tenantline run --allow-insecure-endpoints --metrics-addr "127.0.0.1:$(free_port)" >"$LOGS/operator.log" 2>&1 &
pids+=($!)

echo "--- examples/quickstart"
kubectl apply --server-side -k examples/quickstart
if ! kubectl wait --for=condition=Ready --timeout=120s -n "$NS" providerconfigs,subaccounts,teammembers,phonenumbers --all; then
  kubectl get tenantline -n "$NS" -o wide || true
  echo "--- operator log (tail)"; tail -40 "$LOGS/operator.log"
  exit 1
fi

echo "--- kubectl get tenantline -A"
kubectl get tenantline -A
echo "--- credentials Secrets (keys only)"
for secret in $(kubectl get secrets -n "$NS" -l app.kubernetes.io/managed-by=tenantline -o name); do
  # shellcheck disable=SC2016 # $k and $v are go-template variables, for kubectl, not the shell
  printf '%s: %s\n' "$secret" "$(kubectl get "$secret" -n "$NS" -o go-template='{{range $k, $v := .data}}{{$k}} {{end}}')"
done
echo "--- demo complete: every resource is Ready"
