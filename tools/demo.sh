#!/bin/bash
# make demo: bivy's main job on this machine, step by step. Everything it creates lives
# under build/demo (state roots, bundles), in cgroups under /bivydemo-PID and, for the
# network part, in a network namespace it makes to play "the host": the machine's own
# network, cgroups and processes are left alone. Everything is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BIVY=$(pwd)/$BUILD/bivy
BIVYD=$(pwd)/$BUILD/bivyd
ROOTFS=$(pwd)/$BUILD/rootfs
D=$(pwd)/$BUILD/demo
CG=/bivydemo-$$
NS=bivy-demo-$$
ROOT=$D/root
BIVYD_PID=
CL_PIDS=()

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }
b() { "$BIVY" --root "$ROOT" "$@"; }

cleanup() {
  set +e
  for p in "${CL_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  [ -n "$BIVYD_PID" ] && { "$BIVY" --socket "$D/bivyd.sock" down web >/dev/null 2>&1; kill "$BIVYD_PID" 2>/dev/null; wait "$BIVYD_PID" 2>/dev/null; }
  for r in "$ROOT" "$D/droot" "$D"/n?/root; do
    for id in $("$BIVY" --root "$r" list -q 2>/dev/null); do
      nsenter --net="/run/netns/$NS" "$BIVY" --root "$r" delete -f "$id" >/dev/null 2>&1 ||
        "$BIVY" --root "$r" delete -f "$id" >/dev/null 2>&1
    done
  done
  ip netns del "$NS" 2>/dev/null
  for d in /sys/fs/cgroup/*/"${CG#/}" /sys/fs/cgroup/"${CG#/}"; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  rm -rf "$D"
}
trap cleanup EXIT
rm -rf "$D"; mkdir -p "$D"

# bundle NAME CMD...: a bundle on the shared read-only busybox rootfs
bundle() {
  local name=$1; shift
  mkdir -p "$D/$name"
  "$BIVY" spec -b "$D/$name" "${SPEC_ARGS[@]}" >/dev/null
  local args
  args=$(printf '%s\n' "$@" | jq -R . | jq -sc .)
  jq --arg r "$ROOTFS" --argjson a "$args" --arg cg "$CG/$name" \
    '.root.path=$r | .process.args=$a | .linux.cgroupsPath=$cg' "$D/$name/config.json" >"$D/$name/c.json"
  mv "$D/$name/c.json" "$D/$name/config.json"
}
SPEC_ARGS=()

step "bivy $("$BIVY" --version | head -1 | cut -d' ' -f3) on $(uname -r), cgroups: $(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null >/dev/null && echo hybrid || echo unified)"
echo "rootfs: $ROOTFS ($(ls "$ROOTFS/bin" | wc -l) busybox applets, made by 'bivy rootfs create')"

step "1. An isolated container: own pid/mount/uts/ipc/net/cgroup namespaces, pivot_root, read-only root, default seccomp profile, 3 capabilities, no_new_privs"
bundle iso sh -c 'echo "hostname=$(hostname) pid=$$ uid=$(id -u)"; grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status; ip link 2>/dev/null | grep -c mtu | sed "s/^/network interfaces: /"; touch /x 2>&1 | sed "s/^/write to root: /"; unshare -U true 2>&1 | sed "s/^/unshare: /"; exit 3'
set +e
show b run -b "$D/iso" iso
echo "exit status: $? (the container's own)"
set -e

step "2. Live vertical resize of a running service (no restart, no surprise OOM kill)"
bundle svc sh -c 'mkdir -p /dev/shm/x && head -c 60m /dev/zero > /dev/shm/x/ballast && echo ready && exec sleep 1000'
jq '.linux.resources = {"memory": {"limit": 134217728}, "cpu": {"quota": 50000, "period": 100000}, "pids": {"limit": 64}}' \
  "$D/svc/config.json" >"$D/svc/c.json" && mv "$D/svc/c.json" "$D/svc/config.json"
b run -d -b "$D/svc" svc >/dev/null
for i in $(seq 50); do [ "$(b stats --format json svc | jq '.memory.usage.usage // .memory.current // 0')" -gt 50000000 ] 2>/dev/null && break; sleep 0.1; done
pid=$(b state svc | jq .pid)
echo "service pid $pid holds ~60M of tmpfs in a 128M limit"
show b update --memory 256M --cpus 1.5 svc
echo "... shrinking below what it uses is refused, the service keeps running:"
set +e
show b update --memory 32M --reclaim-timeout 1s svc
set -e
echo "still alive: $(kill -0 "$pid" && echo yes)"
show b stats svc
b delete -f svc

step "3. Networking: a web service on the bivy0 bridge, published on a host port (in a namespace playing the host)"
ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
SPEC_ARGS=(--net bridge --publish 8080:80)
bundle web httpd -f -p 80 -h /etc
SPEC_ARGS=()
nsenter --net="/run/netns/$NS" "$BIVY" --root "$ROOT" run -d -b "$D/web" web >/dev/null
ip=$(jq -r .net.ip "$ROOT/web/state.json")
gw=$(jq -r .net.gateway "$ROOT/web/state.json")
echo "container address: $ip (leased from the bivy0 network $(jq -r .net.subnet "$ROOT/web/state.json"), gateway $gw)"
get() { nsenter --net="/run/netns/$NS" "$ROOTFS/bin/busybox" sh -c "printf 'GET /$2 HTTP/1.0\r\n\r\n' | nc -w 3 $1" | sed '1,/^\r$/d'; }
echo "\$ GET http://$ip:80/passwd (over the bridge)"; get "$ip:80" passwd | sed -n 1p
echo "\$ GET http://$gw:8080/group (the host's port 8080, published through nftables)"; get "$gw:8080" group | sed -n 1p
show nsenter --net="/run/netns/$NS" "$BIVY" --root "$ROOT" net ls
nsenter --net="/run/netns/$NS" "$BIVY" --root "$ROOT" delete -f web

step "4. bivyd: crash the service and watch it come back"
"$BIVYD" --root "$D/droot" --state-dir "$D/dstate" --socket "$D/bivyd.sock" --cgroup-parent "$CG/bivyd" \
  >"$D/bivyd.log" 2>&1 &
BIVYD_PID=$!
for i in $(seq 50); do [ -S "$D/bivyd.sock" ] && break; sleep 0.1; done
export BIVY_SOCKET=$D/bivyd.sock
show "$BIVY" up web --rootfs "$ROOTFS" --restart always --memory 64M -- sh -c 'echo "serving as pid $$"; exec sleep 1000'
sleep 0.5
show "$BIVY" ls
pid=$("$BIVY" ls --format json | jq '.[] | select(.name=="web") | .pid')
echo "\$ kill -9 $pid   # the service crashes"
kill -9 "$pid"
for i in $(seq 50); do
  np=$("$BIVY" ls --format json | jq '.[] | select(.name=="web") | .pid')
  [ "$np" != "$pid" ] && [ "$np" != null ] && [ "$np" != 0 ] && break; sleep 0.1
done
show "$BIVY" ls
show "$BIVY" logs web
show "$BIVY" down web

step "5. bivyd autoscaling: a service whose memory need grows from 40 MB to 300 MB"
# it fills a tmpfs inside the container (charged to its memory cgroup, not reclaimable)
grow='dd if=/dev/zero of=/big/base bs=1M count=40 2>/dev/null; i=0; while [ $i -lt 13 ]; do i=$((i+1)); dd if=/dev/zero of=/big/f$i bs=1M count=20 2>/dev/null || exit 3; sleep 0.3; done; echo "done: 300 MB in use"'
for n in static auto; do
  bundle "$n" sh -c "$grow"
  jq '.mounts += [{"destination": "/big", "type": "tmpfs", "source": "tmpfs", "options": ["size=400m"]}]' \
    "$D/$n/config.json" >"$D/$n/c.json" && mv "$D/$n/c.json" "$D/$n/config.json"
done
wait_exited() { for i in $(seq 300); do [ "$("$BIVY" ls --format json | jq -r ".[] | select(.name==\"$1\") | .state")" = exited ] && return; sleep 0.1; done; }
echo "# with a static 100 MB limit:"
show "$BIVY" up static --bundle "$D/static" --memory 100M
wait_exited static
show "$BIVY" ls
echo "# under --autoscale memory=64M:512M, bivyd grows the limit before the kernel would OOM-kill it:"
show "$BIVY" up auto --bundle "$D/auto" --autoscale memory=64M:512M
wait_exited auto
show "$BIVY" ls
show "$BIVY" logs auto
echo "\$ $BIVY monitor auto --format json | jq 'select(.type == \"autoscale\")'   # each grow step"
"$BIVY" monitor auto --format json | jq -c 'select(.type == "autoscale") | {reason, before, after, reaction_ms}'

step "6. A cluster through etcd: three etcd members over mutual TLS, three bivyd nodes, six instances; one node dies"
# a CA, etcd's server certificate and the nodes' client certificate (tools/tls-certs.sh, openssl)
tools/tls-certs.sh "$D/tls" >/dev/null
TLS=(--etcd-cacert "$D/tls/ca.pem" --etcd-cert "$D/tls/client.pem" --etcd-key "$D/tls/client-key.pem")
ecurl() { curl -sf --cacert "$D/tls/ca.pem" --cert "$D/tls/client.pem" --key "$D/tls/client-key.pem" "$@"; }
# three etcd members on loopback at free ports, with their data under build/demo (removed at the end)
free_port() { local p; while :; do p=$(shuf -i 20000-60999 -n 1); ss -Htan "( sport = :$p )" | grep -q . || { echo "$p"; return; }; done; }
declare -A ecp epp
peers="" urls=""
for m in m1 m2 m3; do
  ecp[$m]=$(free_port); epp[$m]=$(free_port)
  peers="$peers${peers:+,}$m=http://127.0.0.1:${epp[$m]}"; urls="$urls${urls:+,}https://127.0.0.1:${ecp[$m]}"
done
for m in m1 m2 m3; do
  etcd --name "$m" --data-dir "$D/etcd-$m" --listen-client-urls "https://127.0.0.1:${ecp[$m]}" \
    --advertise-client-urls "https://127.0.0.1:${ecp[$m]}" --listen-peer-urls "http://127.0.0.1:${epp[$m]}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${epp[$m]}" --initial-cluster "$peers" \
    --cert-file "$D/tls/server.pem" --key-file "$D/tls/server-key.pem" --client-cert-auth --trusted-ca-file "$D/tls/ca.pem" \
    >"$D/etcd-$m.log" 2>&1 &
  CL_PIDS+=($!)
  disown
done
for m in m1 m2 m3; do for i in $(seq 100); do ecurl "https://127.0.0.1:${ecp[$m]}/health" >/dev/null && break; sleep 0.1; done; done
# each node's own policy: what it agrees to run of the specs it finds in etcd
echo '{"host_bind_mounts": false, "host_namespaces": false, "max_memory": "512M"}' >"$D/policy.json"
echo "\$ cat policy.json"; cat "$D/policy.json"
nb() { local n=$1; shift; "$BIVY" --socket "$D/$n/sock" "$@"; }
for n in n1 n2 n3; do
  mkdir -p "$D/$n"
  echo "\$ bivyd --cluster $urls --node $n --etcd-cacert ca.pem --etcd-cert client.pem --etcd-key client-key.pem --cluster-policy policy.json --node-cpus 2 --node-memory 1G ... &"
  "$BIVYD" --cluster "$urls" --node "$n" "${TLS[@]}" --cluster-policy "$D/policy.json" --node-cpus 2 --node-memory 1G \
    --root "$D/$n/root" --state-dir "$D/$n/state" --socket "$D/$n/sock" --cgroup-parent "$CG/$n" >"$D/$n.log" 2>&1 &
  CL_PIDS+=($!)
  eval "pid_$n=$!"
  disown
  for i in $(seq 100); do nb "$n" ls >/dev/null 2>&1 && break; sleep 0.1; done
done
for i in 1 2 3 4 5 6; do nb n1 up "svc$i" --rootfs "$ROOTFS" --restart always --memory 64M --cpus 0.2 -- sleep 100000 >/dev/null; done
echo "\$ bivy up svc1..svc6 --memory 64M --cpus 0.2 ... (asked on n1; placed least loaded first)"
sleep 1
show nb n2 ls
echo "\$ kill -9 <bivyd of n1> <its instances>   # node n1 dies"
kill -9 "$pid_n1"
for p in $(find /sys/fs/cgroup/pids/"${CG#/}"/n1 /sys/fs/cgroup/"${CG#/}"/n1 -name cgroup.procs -exec cat {} + 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
t0=$(date +%s.%N)
for i in $(seq 150); do
  [ "$(nb n2 ls --format json | jq '[.[] | select(.state == "running" and .node != "n1")] | length')" = 6 ] && break
  sleep 0.1
done
echo "# all six running again on n2 and n3 after $(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN{printf "%.1f", a - b}') s (lease TTL 3 s: n1's lease expired, the others claimed its instances in etcd, exactly once)"
show nb n2 ls
show nb n3 drain n2
for i in $(seq 100); do
  [ "$(nb n3 ls --format json | jq '[.[] | select(.state == "running" and .node == "n3")] | length')" = 6 ] && break
  sleep 0.1
done
show nb n3 ls
show nb n3 undrain n2
echo "# a bundle that bind-mounts the host's / is refused by every live node's policy (n2, n3) and never runs:"
mkdir -p "$D/evil" && (cd "$D/evil" && "$BIVY" spec && jq --arg r "$ROOTFS" '.root.path = $r | .process.args = ["sleep", "1000"] |
  .mounts += [{"destination": "/host", "type": "bind", "source": "/", "options": ["rbind", "ro"]}]' config.json >c && mv c config.json)
show nb n2 up evil --bundle "$D/evil"
for i in $(seq 50); do [ "$(nb n2 ls --format json | jq '[.[] | select(.name == "evil") | .refused_by // {} | length] | add')" = 2 ] && break; sleep 0.1; done
echo "\$ bivy ls --format json | jq '.[] | select(.name == \"evil\") | {state, refused_by}'"
nb n2 ls --format json | jq -c '.[] | select(.name == "evil") | {state, refused_by}'
echo "# and a node without a valid client certificate cannot join (etcd refuses the TLS handshake):"
mkdir -p "$D/n4"
"$BIVYD" --cluster "$urls" --node n4 --etcd-cacert "$D/tls/ca.pem" --root "$D/n4/root" --state-dir "$D/n4/state" \
  --socket "$D/n4/sock" --cgroup-parent "$CG/n4" >"$D/n4.log" 2>&1 &
CL_PIDS+=($!)
disown
for i in $(seq 50); do grep -q "cluster: joining: etcd at" "$D/n4.log" && break; sleep 0.1; done
show nb n4 ls || true

step "done: everything the demo made is being removed"
