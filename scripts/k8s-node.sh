#!/usr/bin/env bash
# A real single-node Kubernetes v1.20 for the tests: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler (built by scripts/k8s-real.sh), containerd 1.6,
# runc and the CNI bridge (Debian), a kubelet, all in a network namespace of its own with
# no route out. Images are built here and imported; nothing is pulled.
#
#   k8s-node.sh prepare           Debian's packages (containerd, runc, CNI plugins, gcc,
#                                 busybox-static) and every binary (k8s-real.sh prepare).
#   k8s-node.sh images SRC OUT    OUT/pause.tar (kcm.local/pause:3.2) and OUT/kcm.tar: the
#                                 image kcm ships (the Dockerfile's twin), busybox and the
#                                 self-contained bundle of the kcm checkout SRC.
#   k8s-node.sh start STATE       the node (STATE on a real disk: overlayfs lives there),
#                                 Ready in about 40 s; STATE/env says what it started.
#   k8s-node.sh stop STATE        stops what start recorded, by PID, then removes its
#                                 mounts, kubepods cgroups, namespace, host paths and STATE.
#   k8s-node.sh exec STATE CMD... CMD in the node's namespace, KUBECONFIG set.
#
# Network: the namespace (named after STATE) has loopback (127.0.0.1, and the kubernetes
# Service IP 10.96.0.1) and a bridge kcm0 (10.88.0.1/16: the node IP, the pods' gateway)
# and nothing else: no uplink, no default route, no NAT; start checks both before anything
# runs. The API server listens on 443 inside it only (pods reach 10.96.0.1 directly, no
# kube-proxy), with --enable-aggregator-routing=true. It is entered with nsenter --net, not
# `ip netns exec` (which remounts /sys and would hide the cgroup hierarchies).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${KCM_K8S_CACHE:-/var/tmp/kcm-k8s-real}
BIN=$CACHE/bin
NODE_NAME=${KCM_NODE_NAME:-kcm-node-1}
NODE_IP=10.88.0.1
SERVICE_IP=10.96.0.1
PACKAGES=(containerd runc containernetworking-plugins iptables conntrack gcc libc6-dev busybox-static)

prepare() {
    local missing=() package
    for package in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
         (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
             --no-install-recommends "${missing[@]}")) >/dev/null
    fi
    bash "$HERE/k8s-real.sh" prepare
}

images() {  # SRC OUT
    local src out python root
    src=$(realpath "$1"); out=$(realpath -m "$2"); python=${KCM_PYTHON:-python3}
    mkdir -p "$out"
    root=$(mktemp -d "$out/.root.XXXXXX")
    trap 'rm -rf "$root"' RETURN
    mkdir -p "$root/pause"
    gcc -Os -static -o "$root/pause/pause" "$HERE/node/pause.c"
    strip "$root/pause/pause"
    python3 "$HERE/node/image.py" "$root/pause" kcm.local/pause:3.2 "$out/pause.tar" \
        --entrypoint '["/pause"]' --user 65535:65535
    # kcm's image: what the Dockerfile's last stage holds (busybox, the bundle, kcm on PATH,
    # user 65532, ENTRYPOINT kcm), made without a registry.
    local rootfs=$root/kcm version applet
    mkdir -p "$rootfs"/{bin,etc,tmp,root,usr/local/bin,usr/local/share/kcm}
    (cd "$src" && "$python" -m kcm.bundle "$rootfs/usr/local/share/kcm/bundle" >/dev/null)
    cp "$(command -v busybox)" "$rootfs/bin/busybox"
    for applet in $("$rootfs/bin/busybox" --list); do
        [ -e "$rootfs/bin/$applet" ] || ln -s busybox "$rootfs/bin/$applet"
    done
    ln -s ../share/kcm/bundle/kcm "$rootfs/usr/local/bin/kcm"
    chmod 1777 "$rootfs/tmp"
    printf 'root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532:nonroot:/tmp:/bin/sh\n' > "$rootfs/etc/passwd"
    printf 'root:x:0:\nnonroot:x:65532:\n' > "$rootfs/etc/group"
    version=$(cd "$src" && "$python" -c 'import kcm; print(kcm.__version__)')
    python3 "$HERE/node/image.py" "$rootfs" "kcm.local/kcm:${KCM_IMAGE_TAG:-$version}" "$out/kcm.tar" \
        --entrypoint '["kcm"]' --cmd '["--help"]' --user 65532:65532 \
        --env PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
}

netns_of() { echo "kcm-$(basename "$1" | tr -c 'a-zA-Z0-9-\n' '-' | cut -c1-40)"; }

start() {  # STATE
    local state=$1 netns started=$SECONDS
    netns=$(netns_of "$state")
    local ns=(nsenter "--net=/run/netns/$netns")
    for binary in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl; do
        [ -x "$BIN/$binary" ] || { echo "k8s-node: no $BIN/$binary (k8s-node.sh prepare)" >&2; exit 1; }
    done
    mkdir -p "$state"/{etcd,certs,kubelet,kubelet-certs,plugins,containerd/root,containerd/state,containerd/runc,cni/net.d,cni/ipam,logs}
    # Host paths the kubelet, containerd and CNI make whatever they are told: the ones
    # absent now are removed by stop.
    local path
    for path in /var/log/pods /var/log/containers /var/lib/cni /run/containerd /run/netns /var/lib/kubelet; do
        [ -e "$path" ] || grep -qx "$path" "$state/created-host-paths" 2>/dev/null || echo "$path" >> "$state/created-host-paths"
    done
    # 1. The namespace: loopback and a bridge, nothing else; proven before anything starts.
    [ -e "/run/netns/$netns" ] || ip netns add "$netns"
    echo "NETNS=$netns" > "$state/env"
    "${ns[@]}" ip link set lo up
    "${ns[@]}" ip addr replace "$SERVICE_IP/32" dev lo
    "${ns[@]}" ip link show kcm0 >/dev/null 2>&1 || "${ns[@]}" ip link add kcm0 type bridge
    "${ns[@]}" ip addr replace "$NODE_IP/16" dev kcm0
    "${ns[@]}" ip link set kcm0 up
    if "${ns[@]}" ip route | grep -q '^default'; then
        echo "k8s-node: the namespace $netns has a default route" >&2; exit 3
    fi
    if "${ns[@]}" python3 -c 'import socket; s = socket.socket(); s.settimeout(2); s.connect(("192.0.2.1", 80))' 2>/dev/null; then
        echo "k8s-node: 192.0.2.1 is reachable from $netns" >&2; exit 3
    fi
    # 2. Credentials and configuration.
    [ -f "$state/sa.key" ] || openssl genrsa -out "$state/sa.key" 2048 2>/dev/null
    if [ ! -f "$state/tokens.csv" ]; then
        token() { head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
        { echo "$(token),admin,admin,system:masters"
          echo "$(token),system:kube-controller-manager,cm,system:masters"
          echo "$(token),system:kube-scheduler,scheduler,system:masters"
          echo "$(token),system:node:$NODE_NAME,node,\"system:nodes,system:masters\""; } > "$state/tokens.csv"
    fi
    write_containerd_config "$state"
    # 3. The control plane.
    launch "$state" etcd "$BIN/etcd" --name=node --data-dir="$state/etcd" \
        --listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 \
        --listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 \
        --initial-cluster=node=http://127.0.0.1:2380 --quota-backend-bytes=1073741824
    launch "$state" apiserver "$BIN/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 \
        --bind-address=0.0.0.0 --advertise-address=$NODE_IP --secure-port=443 --insecure-port=0 \
        --cert-dir="$state/certs" --token-auth-file="$state/tokens.csv" --authorization-mode=RBAC \
        --service-account-issuer=https://kubernetes.default.svc.cluster.local \
        --service-account-signing-key-file="$state/sa.key" --service-account-key-file="$state/sa.key" \
        --api-audiences=https://kubernetes.default.svc.cluster.local \
        --service-cluster-ip-range=10.96.0.0/16 --allow-privileged=true \
        --kubelet-preferred-address-types=InternalIP --enable-priority-and-fairness=false \
        --enable-aggregator-routing=true
    local admin i
    admin=$(awk -F, '$2=="admin"{print $1}' "$state/tokens.csv")
    for ((i = 0; i < 1200; i++)); do
        "${ns[@]}" curl -sk -m 2 -H "Authorization: Bearer $admin" https://127.0.0.1:443/readyz 2>/dev/null | grep -qx ok \
            && [ -s "$state/certs/apiserver.crt" ] && break
        alive "$state" apiserver || { tail -20 "$state/logs/apiserver.log" >&2; exit 1; }
        sleep 0.1
    done
    [ "$i" -lt 1200 ] || { echo "k8s-node: kube-apiserver not ready in 120 s" >&2; exit 1; }
    local user
    for user in admin:admin system:kube-controller-manager:cm system:kube-scheduler:scheduler "system:node:$NODE_NAME:kubelet"; do
        kubeconfig "$state" "${user%:*}" > "$state/${user##*:}.kubeconfig"
    done
    launch "$state" controller-manager "$BIN/kube-controller-manager" --kubeconfig="$state/cm.kubeconfig" \
        --service-account-private-key-file="$state/sa.key" --root-ca-file="$state/certs/apiserver.crt" \
        --leader-elect=false --port=0 --secure-port=0 --use-service-account-credentials=false \
        --service-cluster-ip-range=10.96.0.0/16
    launch "$state" scheduler "$BIN/kube-scheduler" --kubeconfig="$state/scheduler.kubeconfig" \
        --leader-elect=false --port=0 --secure-port=0
    # 4. containerd with the images, then the kubelet.
    start_containerd "$state"
    local ctr=(ctr --address "$state/containerd/containerd.sock" -n k8s.io) image
    for image in "${KCM_NODE_IMAGES:?KCM_NODE_IMAGES: the directory of k8s-node.sh images}"/*.tar; do
        "${ctr[@]}" images import "$image" >/dev/null
    done
    start_kubelet "$state"
    {
        echo "NODE_NAME=$NODE_NAME"
        echo "KUBECONFIG=$state/admin.kubeconfig"
        echo "CONTAINERD_SOCK=$state/containerd/containerd.sock"
    } >> "$state/env"
    for ((i = 0; i < 1800; i++)); do
        [ "$("${ns[@]}" "$BIN/kubectl" --kubeconfig="$state/admin.kubeconfig" get node "$NODE_NAME" \
            -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ] && break
        alive "$state" kubelet || { tail -30 "$state/logs/kubelet.log" >&2; exit 1; }
        sleep 0.1
    done
    [ "$i" -lt 1800 ] || { echo "k8s-node: the node is not Ready in 180 s" >&2; exit 1; }
    echo "k8s-node: $NODE_NAME Ready in $((SECONDS - started)) s (namespace $netns)"
}

write_containerd_config() {  # STATE
    local state=$1
    cat > "$state/containerd/config.toml" <<TOML
version = 2
root = "$state/containerd/root"
state = "$state/containerd/state"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$state/containerd/containerd.sock"
[ttrpc]
  address = "$state/containerd/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "kcm.local/pause:3.2"
  stream_server_address = "127.0.0.1"
  # Root here lacks CAP_SYS_RESOURCE: no process may lower its oom_score_adj, and runc
  # fails every sandbox the kubelet asks -998 for, unless containerd leaves it alone.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$state/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$state/cni/net.d"
    max_conf_num = 1
TOML
    cat > "$state/cni/net.d/10-kcm-node.conflist" <<JSON
{"cniVersion": "0.4.0", "name": "kcm-node", "plugins": [
  {"type": "bridge", "bridge": "kcm0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$state/cni/ipam",
            "ranges": [[{"subnet": "10.88.0.0/16", "gateway": "$NODE_IP"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}}]}
JSON
}

start_containerd() {  # STATE (also after a restart: the tests restart it)
    local state=$1 i
    launch "$state" containerd containerd --config="$state/containerd/config.toml"
    for ((i = 0; i < 300; i++)); do
        ctr --address "$state/containerd/containerd.sock" version >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "k8s-node: containerd did not answer in 30 s" >&2; exit 1
}

start_kubelet() {  # STATE
    local state=$1
    launch "$state" kubelet "$BIN/kubelet" --kubeconfig="$state/kubelet.kubeconfig" \
        --container-runtime=remote --container-runtime-endpoint="unix://$state/containerd/containerd.sock" \
        --image-service-endpoint="unix://$state/containerd/containerd.sock" \
        --cgroup-driver=cgroupfs --cpu-manager-policy=none --fail-swap-on=false \
        --root-dir="$state/kubelet" --cert-dir="$state/kubelet-certs" --volume-plugin-dir="$state/plugins" \
        --hostname-override="$NODE_NAME" --node-ip=$NODE_IP --read-only-port=0 \
        --healthz-bind-address=127.0.0.1 --pod-infra-container-image=kcm.local/pause:3.2 \
        --runtime-request-timeout=5m --image-gc-high-threshold=99 --image-gc-low-threshold=98 \
        --eviction-hard='memory.available<100Mi' --serialize-image-pulls=false \
        --node-status-update-frequency=4s --sync-frequency=5s
}

kubeconfig() {  # STATE USER
    local token
    token=$(awk -F, -v user="$2" '$2==user{print $1}' "$1/tokens.csv")
    cat <<KUBECONFIG
apiVersion: v1
kind: Config
current-context: node
clusters:
- name: node
  cluster: {server: "https://$NODE_IP:443", certificate-authority-data: "$(base64 -w0 "$1/certs/apiserver.crt")"}
users:
- name: user
  user: {token: "$token"}
contexts:
- name: node
  context: {cluster: node, user: user}
KUBECONFIG
}

launch() {  # STATE NAME CMD...: in the namespace, in a session of its own, PID recorded
    local state=$1 name=$2 netns
    shift 2
    netns=$(netns_of "$state")
    setsid nsenter "--net=/run/netns/$netns" "$@" >>"$state/logs/$name.log" 2>&1 </dev/null &
    echo $! > "$state/$name.pid"
}

alive() {  # STATE NAME
    [ -f "$1/$2.pid" ] && kill -0 "$(cat "$1/$2.pid")" 2>/dev/null
}

halt() {  # STATE NAME SECONDS: SIGTERM, then SIGKILL, by the recorded PID only
    local pid i
    [ -f "$1/$2.pid" ] || return 0
    pid=$(cat "$1/$2.pid")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for ((i = 0; i < $3 * 10; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$1/$2.pid"
}

stop() {  # STATE
    local state=$1 netns sock task container mount hierarchy path
    [ -d "$state" ] || return 0
    netns=$(netns_of "$state")
    halt "$state" kubelet 20
    sock=$state/containerd/containerd.sock
    if [ -S "$sock" ] && alive "$state" containerd; then
        local ctr=(ctr --address "$sock" -n k8s.io)
        for task in $("${ctr[@]}" tasks ls -q 2>/dev/null); do "${ctr[@]}" tasks kill -s SIGKILL "$task" >/dev/null 2>&1 || true; done
        for ((i = 0; i < 50; i++)); do
            "${ctr[@]}" tasks ls 2>/dev/null | grep -q RUNNING || break
            sleep 0.1
        done
        for task in $("${ctr[@]}" tasks ls -q 2>/dev/null); do "${ctr[@]}" tasks delete -f "$task" >/dev/null 2>&1 || true; done
        for container in $("${ctr[@]}" containers ls -q 2>/dev/null); do "${ctr[@]}" containers delete "$container" >/dev/null 2>&1 || true; done
    fi
    halt "$state" containerd 20
    halt "$state" scheduler 10
    halt "$state" controller-manager 10
    halt "$state" apiserver 20
    halt "$state" etcd 20
    # What the kubelet and containerd mounted under STATE, and the pods' namespaces.
    grep -o " $state/[^ ]*" /proc/self/mounts | sort -r | while read -r mount; do
        umount "$mount" 2>/dev/null || umount -l "$mount" 2>/dev/null || true
    done
    for mount in $(grep -o ' /run/containerd/[^ ]*\| /run/netns/cni-[^ ]*' /proc/self/mounts | sort -r); do
        umount "$mount" 2>/dev/null || umount -l "$mount" 2>/dev/null || true
    done
    # The kubepods cgroups this node made (deepest first).
    for hierarchy in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
        [ -d "$hierarchy" ] || continue
        grep -qx "$hierarchy" "$state/created-cgroups" 2>/dev/null || continue
        find "$hierarchy" -depth -type d -exec rmdir {} \; 2>/dev/null || true
        [ -d "$hierarchy" ] && echo "k8s-node: left $hierarchy (tasks still in it)" >&2
    done
    for path in $(ls /run/netns 2>/dev/null | grep '^cni-' || true); do ip netns del "$path" 2>/dev/null || true; done
    ip netns del "$netns" 2>/dev/null || true
    if [ -f "$state/created-host-paths" ]; then
        while read -r path; do
            case $path in
                /run/netns) [ -d /run/netns ] && [ -z "$(ls -A /run/netns)" ] && { umount /run/netns 2>/dev/null || true; rmdir /run/netns; } ;;
                /?*) rm -rf "$path" ;;
            esac
        done < "$state/created-host-paths"
    fi
    rm -rf "$state"
}

case ${1:-} in
    prepare) prepare ;;
    images) [ $# = 3 ] || { echo "usage: k8s-node.sh images SRC OUT" >&2; exit 2; }; images "$2" "$3" ;;
    start) [ $# = 2 ] || { echo "usage: k8s-node.sh start STATE" >&2; exit 2; }
           state=$(realpath -m "$2"); mkdir -p "$state"
           for h in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
               [ -e "$h" ] && echo "k8s-node: $h exists: another kubelet runs here" >&2 && exit 1
           done
           ls -d /sys/fs/cgroup/*/ /sys/fs/cgroup/ | sed 's#/$#/kubepods#' > "$state/created-cgroups"
           start "$state" ;;
    stop) [ $# = 2 ] || { echo "usage: k8s-node.sh stop STATE" >&2; exit 2; }; stop "$(realpath -m "$2")" ;;
    restart-kubelet) halt "$(realpath -m "$2")" kubelet 20; start_kubelet "$(realpath -m "$2")" ;;
    restart-containerd) halt "$(realpath -m "$2")" containerd 20; start_containerd "$(realpath -m "$2")" ;;
    exec) state=$(realpath -m "$2"); shift 2
          . "$state/env"
          export KUBECONFIG PATH="$BIN:$PATH"
          exec nsenter "--net=/run/netns/$NETNS" "$@" ;;
    *) echo "usage: k8s-node.sh prepare | images SRC OUT | start STATE | stop STATE | exec STATE CMD..." >&2; exit 2 ;;
esac
