#!/usr/bin/env bash
# A real node for the local control plane: containerd + runc (Debian's packages), a CNI bridge,
# kubelet, kube-proxy and kube-scheduler (built from the same k8s.io/kubernetes module as the
# control plane), the cluster's DNS (CoreDNS, hack/coredns, on the bridge's address) and a locally
# built pause image. hack/cluster.sh calls it when TENANTLINE_NODE=1.
#
#   hack/node.sh network       create the pod bridge (before kube-apiserver binds its address)
#   hack/node.sh up            start the node and wait until it is Ready
#   hack/node.sh down          stop it and remove every process, mount, cgroup, netns, rule and
#                              bridge it made
#   hack/node.sh leftovers     print what a down left behind (nothing, when it works)
#   hack/node.sh load FILE     import an image archive (docker-archive) into the node's containerd
#
# Everything lives under .cache/node (state) and the cgroup /tenantline-node; the bridge is tl-pods with
# 10.244.0.1/24. The machine's facts behind the settings are in ../shared/NODE-NOTES.md: cgroup v1
# (kubelet's failCgroupV1: false), no CAP_SYS_RESOURCE (containerd's restrict_oom_score_adj).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN="$ROOT/.cache/bin"
PKI="$ROOT/.cache/cluster/pki"
DIR="$ROOT/.cache/node"
RUN=/run/tenantline-containerd   # containerd's state (sockets, shim bundles): short paths, tmpfs
SOCK="$RUN/containerd.sock"
NODE_NAME=tl-node
BRIDGE=tl-pods
GATEWAY=10.244.0.1
POD_CIDR=10.244.0.0/24
CLUSTER_DOMAIN=cluster.local
CGROUP=tenantline-node
PAUSE_IMAGE=registry.k8s.io/pause:3.10.1
CONTROLLERS=(blkio cpu cpuacct cpuset devices freezer memory pids systemd)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

need_packages() {
  local missing=()
  command -v containerd >/dev/null || missing+=(containerd)
  command -v runc >/dev/null || missing+=(runc)
  command -v iptables >/dev/null || missing+=(iptables)
  [ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
  command -v buildah >/dev/null || missing+=(buildah)
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing ${missing[*]} (Debian packages)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The bridge, the cgroup and containerd's state directory are the machine's: one node per machine.
# Another checkout's node that is running (or its control plane, on the bridge's address) is left
# alone, and is in the way; what one that was killed left behind (its processes gone, say after a
# reboot of the sandbox) is cleared.
not_ours() {
  [ -d "$DIR" ] && return 1
  if alive || another_running; then
    echo "another checkout's local node is running (bridge $BRIDGE, $RUN, cgroup /$CGROUP): stop it there with make down" >&2
    return 0
  fi
  [ -d "$RUN" ] || ip link show "$BRIDGE" >/dev/null 2>&1 || return 1
  echo "clearing what a stopped local node left behind (bridge $BRIDGE, $RUN, cgroup /$CGROUP)"
  clear_machine
  return 1
}

# alive: a process is in the node's cgroup, or another checkout's node or control plane
# (kube-scheduler, kube-proxy, kubelet with their files in its .cache/node, kube-apiserver on the
# bridge's address) runs. cgroup.procs is read, not stat'ed: cgroupfs files have no size.
alive() {
  local cg pid
  for cg in $(our_cgroups); do grep -q . "$cg/cgroup.procs" 2>/dev/null && return 0; done
  for pid in $(pgrep -f -- "/\.cache/node/|--bind-address $GATEWAY" || true); do
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$ROOT/.cache/" || return 0
  done
  return 1
}

# another_running: the containerd of another checkout's node runs (its config is not under $DIR).
another_running() { pgrep -af '^containerd --config ' | grep -qv " $DIR/"; }

network() {
  not_ours && exit 1
  mkdir -p "$DIR"
  ip link show "$BRIDGE" >/dev/null 2>&1 && return 0
  ip link add "$BRIDGE" type bridge
  ip addr add "$GATEWAY/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # Service traffic between pods on one bridge must pass kube-proxy's rules.
  sysctl -qw net.bridge.bridge-nf-call-iptables=1 net.ipv4.ip_forward=1
}

# in_cgroup CMD...: run CMD in the background inside the cgroup /tenantline-node/system, so that it
# and every process it starts (containerd's shims, containers) can be found and stopped.
in_cgroup() {
  (
    for c in "${CONTROLLERS[@]}"; do
      mkdir -p "/sys/fs/cgroup/$c/$CGROUP/system"
      if [ "$c" = cpuset ]; then
        # A new cpuset has no CPUs or memory nodes (and takes no task) until given its parent's.
        for d in "$CGROUP" "$CGROUP/system"; do
          cat /sys/fs/cgroup/cpuset/cpuset.cpus >"/sys/fs/cgroup/cpuset/$d/cpuset.cpus"
          cat /sys/fs/cgroup/cpuset/cpuset.mems >"/sys/fs/cgroup/cpuset/$d/cpuset.mems"
        done
      fi
      echo "$BASHPID" >"/sys/fs/cgroup/$c/$CGROUP/system/cgroup.procs"
    done
    exec "$@"
  ) &
}

cert() { hack/cluster.sh cert "$@"; }

kubeconfig() {
  local user=$1 server
  server=$(awk '/server:/ {print $2; exit}' "$ROOT/.cache/cluster/kubeconfig")
  sed -e "s#$PKI/admin#$PKI/$user#g" "$ROOT/.cache/cluster/kubeconfig" >"$DIR/$user.kubeconfig"
  grep -q "$server" "$DIR/$user.kubeconfig"
}

write_configs() {
  mkdir -p "$DIR/cni/net.d" "$DIR/cni/ipam" "$DIR/containerd" "$DIR/kubelet" "$RUN"
  cat >"$DIR/cni/net.d/10-tenantline.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "tenantline",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$DIR/cni/ipam", "ranges": [[{"subnet": "$POD_CIDR", "rangeStart": "10.244.0.10", "gateway": "$GATEWAY"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "loopback"}
  ]
}
EOF
  # containerd 1.6's default config with our root, state, socket, CNI and the settings this
  # machine needs.
  containerd config default \
    | sed -e "s#^root = .*#root = \"$DIR/containerd/root\"#" \
          -e "s#^state = .*#state = \"$RUN/state\"#" \
          -e "s#address = \"/run/containerd/containerd.sock\"#address = \"$SOCK\"#" \
          -e "s#restrict_oom_score_adj = false#restrict_oom_score_adj = true#" \
          -e "s#SystemdCgroup = true#SystemdCgroup = false#" \
          -e "s#sandbox_image = .*#sandbox_image = \"$PAUSE_IMAGE\"#" \
          -e "s#bin_dir = .*#bin_dir = \"/usr/lib/cni\"#" \
          -e "s#conf_dir = .*#conf_dir = \"$DIR/cni/net.d\"#" \
    >"$DIR/containerd/config.toml"
  grep -q 'restrict_oom_score_adj = true' "$DIR/containerd/config.toml"
  grep -q "sandbox_image = \"$PAUSE_IMAGE\"" "$DIR/containerd/config.toml"

  cert "node" "/O=system:nodes/CN=system:node:$NODE_NAME"
  cert "kubelet-serving" "/CN=$NODE_NAME" "IP:$GATEWAY,DNS:$NODE_NAME"
  cert "kube-proxy" "/CN=system:kube-proxy"
  cert "scheduler" "/CN=system:kube-scheduler"
  kubeconfig node
  kubeconfig kube-proxy
  kubeconfig scheduler

  # The cluster's DNS: CoreDNS on the bridge's address, port 53, which every pod reaches (as it
  # reaches the API server there). Service and pod names from the API (the admin kubeconfig);
  # anything else from the host's resolver.
  cat >"$DIR/Corefile" <<EOF
.:53 {
    bind $GATEWAY
    errors
    ready 127.0.0.1:$(free_port)
    kubernetes $CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
        kubeconfig $ROOT/.cache/cluster/kubeconfig tenantline-local
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    forward . /etc/resolv.conf
    cache 30
}
EOF
  printf 'nameserver %s\noptions timeout:1 attempts:1\n' "$GATEWAY" >"$DIR/resolv.conf"
  cat >"$DIR/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP
containerRuntimeEndpoint: unix://$SOCK
address: $GATEWAY
port: $(free_port)
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $(free_port)
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
failSwapOn: false
# Pods (dnsPolicy ClusterFirst) resolve through CoreDNS, with the cluster's search domains;
# with dnsPolicy Default they get $DIR/resolv.conf, CoreDNS too: the host's own resolver is
# none of theirs.
clusterDNS: [$GATEWAY]
clusterDomain: $CLUSTER_DOMAIN
resolvConf: $DIR/resolv.conf
# Test pods are few and small: never evict for a full disk, never collect our images.
evictionHard: {memory.available: 100Mi, nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
EOF

  cat >"$DIR/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE_NAME
healthzBindAddress: 127.0.0.1:$(free_port)
metricsBindAddress: 127.0.0.1:$(free_port)
clientConnection: {kubeconfig: $DIR/kube-proxy.kubeconfig}
# Leave the host's conntrack table size alone (it needs a capability this machine lacks).
conntrack: {maxPerCore: 0}
EOF
}

# The pause image, built from hack/pause with buildah (no registry, no daemon).
pause_image() {
  local archive="$DIR/pause.tar" ctx="$DIR/pause"
  [ -f "$archive" ] && return 0
  mkdir -p "$ctx"
  (cd hack/pause && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$ctx/pause" .)
  cp hack/pause/Dockerfile "$ctx/"
  hack/buildah.sh bud --quiet -t "$PAUSE_IMAGE" "$ctx" >/dev/null
  hack/buildah.sh push --quiet "$PAUSE_IMAGE" "docker-archive:$archive:$PAUSE_IMAGE" >/dev/null
  hack/buildah.sh rmi "$PAUSE_IMAGE" >/dev/null
}

load() { ctr --address "$SOCK" -n k8s.io images import --all-platforms "$1" >/dev/null; }

wait_for() {
  local what=$1; shift
  for _ in $(seq 1 300); do
    "$@" >/dev/null 2>&1 && return 0
    for p in "$DIR"/*.pid; do
      kill -0 "$(cat "$p")" 2>/dev/null || { echo "$(basename "$p" .pid) exited; its log:" >&2; tail -30 "$DIR/$(basename "$p" .pid).log" >&2; return 1; }
    done
    sleep 0.2
  done
  echo "$what did not happen in 60s" >&2
  return 1
}

up() {
  [ -f "$DIR/kubelet.pid" ] && kill -0 "$(cat "$DIR/kubelet.pid")" 2>/dev/null && { echo "node already running"; return 0; }
  [ -f "$ROOT/.cache/cluster/kubeconfig" ] || { echo "start the control plane first (hack/cluster.sh up)" >&2; exit 1; }
  for tool in kubelet kube-proxy kube-scheduler crictl coredns; do
    [ -x "$BIN/$tool" ] || { echo "$BIN/$tool missing: run hack/tools.sh (make tools)" >&2; exit 1; }
  done
  need_packages
  local start=$SECONDS
  network
  write_configs
  pause_image

  in_cgroup containerd --config "$DIR/containerd/config.toml" >"$DIR/containerd.log" 2>&1
  echo $! >"$DIR/containerd.pid"
  wait_for containerd ctr --address "$SOCK" version
  load "$DIR/pause.tar"

  # Before kubelet, so no pod starts before the names it looks up resolve.
  in_cgroup "$BIN/coredns" -conf "$DIR/Corefile" >"$DIR/coredns.log" 2>&1
  echo $! >"$DIR/coredns.pid"
  wait_for "CoreDNS ready" curl -sf "http://$(awk '$1 == "ready" {print $2}' "$DIR/Corefile")/ready"

  "$BIN/kube-scheduler" --kubeconfig "$DIR/scheduler.kubeconfig" \
    --authentication-kubeconfig "$DIR/scheduler.kubeconfig" --authorization-kubeconfig "$DIR/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false >"$DIR/scheduler.log" 2>&1 &
  echo $! >"$DIR/scheduler.pid"

  in_cgroup "$BIN/kubelet" --config "$DIR/kubelet/config.yaml" --kubeconfig "$DIR/node.kubeconfig" \
    --root-dir "$DIR/kubelet/root" --hostname-override "$NODE_NAME" --node-ip "$GATEWAY" >"$DIR/kubelet.log" 2>&1
  echo $! >"$DIR/kubelet.pid"

  "$BIN/kube-proxy" --config "$DIR/kube-proxy.yaml" >"$DIR/kube-proxy.log" 2>&1 &
  echo $! >"$DIR/kube-proxy.pid"

  export KUBECONFIG="$ROOT/.cache/cluster/kubeconfig"
  wait_for "node $NODE_NAME Ready" "$BIN/kubectl" wait --for=condition=Ready "node/$NODE_NAME" --timeout=1s
  echo "node $NODE_NAME ready in $((SECONDS - start))s (containerd $(containerd --version | awk '{print $3}'), runc $(runc --version | awk 'NR==1 {print $3}'), cluster DNS $GATEWAY:53 $("$BIN/coredns" -version | head -1))"
}

stop_pid() {
  local file=$1 pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$file"
}

# Every cgroup directory of ours, deepest first.
our_cgroups() { for c in "${CONTROLLERS[@]}"; do [ -d "/sys/fs/cgroup/$c/$CGROUP" ] && find "/sys/fs/cgroup/$c/$CGROUP" -depth -type d; done; }
our_mounts() { awk -v a="$DIR/" -v b="$RUN/" 'index($2, a) == 1 || index($2, b) == 1 {print $2}' /proc/self/mounts | sort -r; }
# Network namespaces of our pods: the ones containerd's state names.
our_netns() { [ -d /run/netns ] && for n in /run/netns/cni-*; do [ -e "$n" ] && echo "$n"; done; true; }

# remove_rules iptables|ip6tables: what kube-proxy --cleanup leaves, kubelet's own chains
# (KUBE-FIREWALL, KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT) and anything CNI made: the jumps into
# them from the built-in chains first, then the chains.
remove_rules() {
  local cmd=$1 table line
  command -v "$cmd-save" >/dev/null || return 0
  for table in filter nat mangle; do
    "$cmd-save" -t "$table" 2>/dev/null | { grep -E '^-A [A-Z]+ .*-j (KUBE|CNI)-' || true; } | while read -r line; do
      eval "$cmd -t $table -D ${line#-A }" 2>/dev/null || true
    done
    "$cmd-save" -t "$table" 2>/dev/null | awk '/^:(KUBE|CNI)-/ {print substr($1, 2)}' | while read -r line; do
      "$cmd" -t "$table" -F "$line" 2>/dev/null || true
      "$cmd" -t "$table" -X "$line" 2>/dev/null || true
    done
  done
}

down() {
  [ -d "$DIR" ] || return 0
  # Stop pods the way kubelet would, so CNI removes their interfaces and addresses.
  if [ -S "$SOCK" ]; then
    stop_pid "$DIR/kubelet.pid"
    "$BIN/crictl" --runtime-endpoint "unix://$SOCK" --timeout 10s rmp --all --force >/dev/null 2>&1 || true
  fi
  stop_pid "$DIR/kubelet.pid"
  stop_pid "$DIR/scheduler.pid"
  stop_pid "$DIR/kube-proxy.pid"
  stop_pid "$DIR/coredns.pid"
  stop_pid "$DIR/containerd.pid"
  # The cgroup, bridge and state are the machine's: while another checkout's node runs in them
  # (it started after ours was gone), they are its own.
  if another_running; then
    echo "another checkout's local node is running: only this checkout's state is removed" >&2
  else
    clear_machine
  fi
  for m in $(our_mounts); do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$DIR"
}

# clear_machine: what the node holds outside its checkout (processes left in its cgroup, mounts,
# pod network namespaces, rules, the bridge, containerd's state), gone.
clear_machine() {
  local cg
  for _ in 1 2 3; do
    for cg in $(our_cgroups); do
      if [ -f "$cg/cgroup.procs" ]; then xargs -r kill -9 <"$cg/cgroup.procs" 2>/dev/null || true; fi
    done
    sleep 0.2
  done
  for m in $(our_mounts); do umount -l "$m" 2>/dev/null || true; done
  for n in $(our_netns); do umount "$n" 2>/dev/null || true; rm -f "$n"; done
  for cg in $(our_cgroups); do rmdir "$cg" 2>/dev/null || true; done
  if [ -x "$BIN/kube-proxy" ]; then "$BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true; fi
  remove_rules iptables
  remove_rules ip6tables
  if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link delete "$BRIDGE"; fi
  rm -rf "$RUN"
}

leftovers() {
  local found=0 line
  report() { echo "$1"; found=1; }
  for pid in $(pgrep -f "$ROOT/.cache/|$RUN/"); do
    [ "$pid" = $$ ] || report "process: $(ps -o pid=,comm= -p "$pid")"
  done
  while read -r line; do [ -n "$line" ] && report "mount: $line"; done < <(our_mounts)
  while read -r line; do [ -n "$line" ] && report "cgroup: $line"; done < <(our_cgroups)
  while read -r line; do [ -n "$line" ] && report "netns: $line"; done < <(our_netns)
  ip link show "$BRIDGE" >/dev/null 2>&1 && report "bridge: $BRIDGE"
  ip -br link 2>/dev/null | grep -q '^veth' && report "veth: $(ip -br link | awk '/^veth/ {print $1}' | tr '\n' ' ')"
  for cmd in iptables ip6tables; do
    "$cmd-save" 2>/dev/null | grep -qE 'KUBE-|CNI-' && report "$cmd: $("$cmd-save" | grep -cE 'KUBE-|CNI-') rules or chains"
  done
  nft list ruleset 2>/dev/null | grep -qE 'kube-proxy|KUBE-' && report "nftables: kube-proxy tables"
  [ -d "$DIR" ] || [ -d "$RUN" ] && report "state: $DIR or $RUN"
  [ $found -eq 0 ] && echo "nothing left behind"
  return $found
}

case "${1:-}" in
  network) network ;;
  up) up ;;
  down) down ;;
  leftovers) leftovers ;;
  load) load "$2" ;;
  *) echo "usage: $0 network|up|down|leftovers|load FILE" >&2; exit 2 ;;
esac
