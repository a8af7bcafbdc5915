#!/usr/bin/env bash
# A real local cluster: etcd + kube-apiserver (Node and RBAC authorization, locally generated
# certificates, service-account token signing) + kube-controller-manager (every default
# controller: garbage collector, namespaces, service accounts, Deployments, EndpointSlices…), on
# free ports. With TENANTLINE_NODE=1 also a node (hack/node.sh: kube-scheduler, kubelet,
# containerd, kube-proxy): the API server then listens on the pod bridge's 10.244.0.1, which pods
# reach through the `kubernetes` Service; without it, on 127.0.0.1 only.
#
#   hack/cluster.sh up     start it; writes .cache/cluster/kubeconfig (admin, system:masters)
#   hack/cluster.sh down   stop it (and the node) and remove their data
#   hack/cluster.sh restart  kill -9 etcd and kube-apiserver and start them again (same ports, same data)
#   hack/cluster.sh env    print the exports to use it from a shell
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN="$ROOT/.cache/bin"
DIR="$ROOT/.cache/cluster"
KUBECONFIG_FILE="$DIR/kubeconfig"

# port_free <address> <port>: nothing listens there (binds as Go's listeners do, SO_REUSEADDR).
port_free() {
  python3 -c 'import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((sys.argv[1], int(sys.argv[2])))' "$1" "$2" 2>/dev/null
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# cert <name> <subject> [san]: a key and a certificate signed by the local CA.
cert() {
  local name=$1 subject=$2 san=${3:-}
  openssl req -new -newkey rsa:2048 -nodes -keyout "$DIR/pki/$name.key" -subj "$subject" -out "$DIR/pki/$name.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth,serverAuth\n%s\n' "${san:+subjectAltName=$san}" >"$DIR/pki/$name.ext"
  openssl x509 -req -in "$DIR/pki/$name.csr" -CA "$DIR/pki/ca.crt" -CAkey "$DIR/pki/ca.key" -CAcreateserial \
    -days 2 -out "$DIR/pki/$name.crt" -extfile "$DIR/pki/$name.ext" 2>/dev/null
}

kubeconfig() {
  local file=$1 user=$2 server=$3
  cat > "$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: tenantline-local
  cluster:
    server: $server
    certificate-authority: $DIR/pki/ca.crt
users:
- name: $user
  user:
    client-certificate: $DIR/pki/$user.crt
    client-key: $DIR/pki/$user.key
contexts:
- name: tenantline-local
  context: {cluster: tenantline-local, user: $user}
current-context: tenantline-local
EOF
}

wait_ready() {
  for _ in $(seq 1 300); do
    if curl -sf --cacert "$DIR/pki/ca.crt" --cert "$DIR/pki/admin.crt" --key "$DIR/pki/admin.key" \
      "$1/readyz" >/dev/null 2>&1; then
      return 0
    fi
    for p in "$DIR"/*.pid; do
      kill -0 "$(cat "$p")" 2>/dev/null || { echo "$(basename "$p" .pid) exited; its log:" >&2; tail -30 "$DIR/$(basename "$p" .pid).log" >&2; return 1; }
    done
    sleep 0.2
  done
  echo "kube-apiserver did not become ready" >&2
  return 1
}

# etcd and kube-apiserver on the ports and with the data dir of $DIR/ports (`up` writes it):
# started by `up`, and again by `restart`.
start_storage_and_apiserver() {
  local etcd_port peer_port api_port address endpoints
  # shellcheck disable=SC1091 # $DIR/ports is written at run time (by up): no file to follow here
  source "$DIR/ports"
  "$BIN/etcd" --name local --data-dir "$DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "local=http://127.0.0.1:$peer_port" --unsafe-no-fsync --log-level warn \
    >>"$DIR/etcd.log" 2>&1 &
  echo $! >"$DIR/etcd.pid"

  "$BIN/kube-apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address "$address" --advertise-address "$address" --secure-port "$api_port" \
    --tls-cert-file "$DIR/pki/apiserver.crt" --tls-private-key-file "$DIR/pki/apiserver.key" \
    --client-ca-file "$DIR/pki/ca.crt" --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --kubelet-client-certificate "$DIR/pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$DIR/pki/apiserver-kubelet-client.key" --kubelet-preferred-address-types InternalIP \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$DIR/pki/sa.pub" --service-account-signing-key-file "$DIR/pki/sa.key" \
    --service-cluster-ip-range 10.96.0.0/24 --endpoint-reconciler-type "$endpoints" \
    >>"$DIR/apiserver.log" 2>&1 &
  echo $! >"$DIR/apiserver.pid"
}

start_controller_manager() {
  # Every default controller: the operator depends on the garbage collector (owner references),
  # the tests on the namespace controller, the chart's pods on Deployments, EndpointSlices,
  # service-account tokens and the kube-root-ca.crt ConfigMap.
  "$BIN/kube-controller-manager" --kubeconfig "$DIR/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$DIR/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$DIR/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false \
    --controllers '*' \
    --use-service-account-credentials=true \
    --service-account-private-key-file "$DIR/pki/sa.key" --root-ca-file "$DIR/pki/ca.crt" \
    >>"$DIR/controller-manager.log" 2>&1 &
  echo $! >"$DIR/controller-manager.pid"
}

up() {
  if [ -f "$DIR/apiserver.pid" ] && kill -0 "$(cat "$DIR/apiserver.pid")" 2>/dev/null; then
    echo "control plane already running; KUBECONFIG=$KUBECONFIG_FILE"
    return 0
  fi
  for tool in etcd kube-apiserver kube-controller-manager; do
    [ -x "$BIN/$tool" ] || { echo "$BIN/$tool missing: run hack/tools.sh (make tools)" >&2; exit 1; }
  done
  rm -rf "$DIR" && mkdir -p "$DIR/pki" "$DIR/etcd"
  local start=$SECONDS etcd_port peer_port api_port server address=127.0.0.1 endpoints=none
  if [ "${TENANTLINE_NODE:-0}" = 1 ]; then
    hack/node.sh network
    # Pods reach the API server at the bridge's address; the `kubernetes` Service points there.
    address=10.244.0.1 endpoints=lease
    touch "$DIR/node"
  fi
  etcd_port=$(free_port); peer_port=$(free_port); api_port=$(free_port)
  server="https://$address:$api_port"

  openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$DIR/pki/ca.key" -subj "/CN=tenantline-local-ca" \
    -days 2 -out "$DIR/pki/ca.crt" 2>/dev/null
  cert apiserver "/CN=kube-apiserver" \
    "IP:127.0.0.1,IP:10.244.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert admin "/O=system:masters/CN=tenantline-admin"
  cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  cert controller-manager "/CN=system:kube-controller-manager"
  openssl genrsa -out "$DIR/pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$DIR/pki/sa.key" -pubout -out "$DIR/pki/sa.pub" 2>/dev/null
  kubeconfig "$KUBECONFIG_FILE" admin "$server"
  kubeconfig "$DIR/controller-manager.kubeconfig" controller-manager "$server"

  printf 'etcd_port=%s peer_port=%s api_port=%s address=%s endpoints=%s\n' \
    "$etcd_port" "$peer_port" "$api_port" "$address" "$endpoints" >"$DIR/ports"
  start_storage_and_apiserver
  start_controller_manager
  wait_ready "$server"
  echo "control plane ready in $((SECONDS - start))s at $server; KUBECONFIG=$KUBECONFIG_FILE"
  [ -f "$DIR/node" ] && hack/node.sh up
  return 0
}

# restart: kill -9 etcd and kube-apiserver (a crash, not a shutdown) and start them again with
# the same ports and data. The controller-manager and the node reconnect by themselves.
restart() {
  [ -f "$DIR/ports" ] || { echo "no local control plane (hack/cluster.sh up)" >&2; exit 1; }
  local server etcd_port peer_port api_port address endpoints
  server=$(awk '/server:/ {print $2}' "$KUBECONFIG_FILE")
  # shellcheck disable=SC1091 # $DIR/ports is written at run time (by up): no file to follow here
  source "$DIR/ports"
  kill -9 "$(cat "$DIR/apiserver.pid")" "$(cat "$DIR/etcd.pid")" 2>/dev/null || true
  # Their ports are free once every thread has gone (the pid may already be a zombie before).
  for listener in "$address:$api_port" "127.0.0.1:$etcd_port" "127.0.0.1:$peer_port"; do
    for _ in $(seq 1 200); do port_free "${listener%:*}" "${listener##*:}" && break; sleep 0.05; done
  done
  start_storage_and_apiserver
  # It reconnects once running, but gives up if the API server goes while it starts.
  kill -0 "$(cat "$DIR/controller-manager.pid")" 2>/dev/null || start_controller_manager
  wait_ready "$server"
}

down() {
  hack/node.sh down
  [ -d "$DIR" ] || return 0
  for name in controller-manager apiserver etcd; do
    [ -f "$DIR/$name.pid" ] || continue
    local pid; pid=$(cat "$DIR/$name.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$DIR"
  echo "control plane stopped"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  restart) restart ;;
  env) echo "export KUBECONFIG=$KUBECONFIG_FILE PATH=$BIN:\$PATH" ;;
  cert) shift; cert "$@" ;;   # for hack/node.sh: a certificate from this cluster's CA
  *) echo "usage: $0 up|down|restart|env" >&2; exit 2 ;;
esac
