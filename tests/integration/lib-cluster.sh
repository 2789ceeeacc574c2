# Shared by the cluster tests (75-cluster.sh, 76-cluster-ha.sh): etcd on loopback (one member
# or three), bivyd nodes with separate state roots and cgroup sub-parents, a sampler that
# checks from the cgroups that no instance runs on two nodes, and clean-up of all of it.
TTL_S=3

nb() { local n=$1; shift; "$BIVY" --socket "$T/$n/sock" "$@"; }

free_port() {
  local p
  while :; do
    p=$(shuf -i 20000-60999 -n 1)
    ss -Htan "( sport = :$p )" | grep -q . || { echo "$p"; return; }
  done
}

# tls_certs DIR [EXTRA_IP...]: CA, etcd server and client certificates (tools/tls-certs.sh)
tls_certs() { "$REPO/tools/tls-certs.sh" "$@"; }
# CL_TLS=1 (before start_etcd/etcd3_plan): etcd serves clients over https and requires a
# client certificate signed by $T/tls/ca.pem; the nodes get NODE_TLS_ARGS
CL_SCHEME=http
CL_TLS_DIR=
NODE_TLS_ARGS=()
cl_tls_setup() { # [EXTRA_IP...]
  [ "${CL_TLS:-0}" = 1 ] || return 0
  CL_SCHEME=https CL_TLS_DIR=$T/tls
  tls_certs "$CL_TLS_DIR" "$@" || fail "tls_certs failed"
  NODE_TLS_ARGS=(--etcd-cacert "$CL_TLS_DIR/ca.pem" --etcd-cert "$CL_TLS_DIR/client.pem" --etcd-key "$CL_TLS_DIR/client-key.pem")
  ETCD_TLS_ARGS=(--cert-file "$CL_TLS_DIR/server.pem" --key-file "$CL_TLS_DIR/server-key.pem" --client-cert-auth
                 --trusted-ca-file "$CL_TLS_DIR/ca.pem")
}
ETCD_TLS_ARGS=()
# curl to etcd (with the client certificate in TLS mode); "ecurl -sf URL ..."
ecurl() {
  if [ -n "$CL_TLS_DIR" ]; then
    curl --cacert "$CL_TLS_DIR/ca.pem" --cert "$CL_TLS_DIR/client.pem" --key "$CL_TLS_DIR/client-key.pem" "$@"
  else curl "$@"; fi
}
# the member's client URL (scheme by CL_TLS)
em_url() { echo "$CL_SCHEME://127.0.0.1:${EM_CP[$1]}"; }

cl_cleanup() {
  local p n d
  for p in $(cat "$T/cl.pids" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
  for p in $(find /sys/fs/cgroup/pids/"$CG_PARENT" /sys/fs/cgroup/"$CG_PARENT" -name cgroup.procs -exec cat {} + 2>/dev/null); do
    kill -9 "$p" 2>/dev/null || true
  done
  for n in n1 n2 n3; do
    [ -d "$T/$n/root" ] || continue
    "$BIVY" --root "$T/$n/root" list -q 2>/dev/null | xargs -r -I{} "$BIVY" --root "$T/$n/root" delete -f {} >/dev/null 2>&1 || true
  done
  for p in "$T"/etcd*.pid; do [ -f "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null; done
  rm -rf "$T"/etcd "$T"/etcd-m*
  [ -n "${CL_VETH:-}" ] && ip link del "$CL_VETH" 2>/dev/null
  [ -n "${CL_NS:-}" ] && ip netns del "$CL_NS" 2>/dev/null
  for d in $(ls -d /sys/fs/cgroup/*/"$CG_PARENT" /sys/fs/cgroup/"$CG_PARENT" 2>/dev/null); do
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  true
}

# start_etcd [EXTRA_LISTEN_IP]: etcd on 127.0.0.1 (and the IP) at random free ports
start_etcd() {
  trap 'rc=$?; set +e; cl_cleanup; (exit $rc); it_teardown' EXIT
  cl_tls_setup "$@"
  ECP=$(free_port)
  EPP=$(free_port)
  local urls="$CL_SCHEME://127.0.0.1:$ECP"
  [ $# -gt 0 ] && urls="$urls,$CL_SCHEME://$1:$ECP"
  ETCD_ARGS=(--name bt --data-dir "$T/etcd" --listen-client-urls "$urls" --advertise-client-urls "$CL_SCHEME://127.0.0.1:$ECP"
             --listen-peer-urls "http://127.0.0.1:$EPP" --initial-advertise-peer-urls "http://127.0.0.1:$EPP"
             --initial-cluster "bt=http://127.0.0.1:$EPP" "${ETCD_TLS_ARGS[@]}")
  etcd "${ETCD_ARGS[@]}" >>"$T/etcd.log" 2>&1 &
  echo $! >"$T/etcd.pid"
  ETCD=$CL_SCHEME://127.0.0.1:$ECP
  wait_for ecurl -sf "$ETCD/health"
}

# start_etcd3 [EXTRA_LISTEN_IP...]: a three-member etcd cluster on 127.0.0.1 (members m1 m2
# m3, random free ports, one data dir each), also listening on the extra IPs (host ends of
# test-made veths). ETCD_URLS: the three client URLs, comma-separated; ETCD: m1's;
# EM_ARGS_<member>: each member's arguments (to start it again after a kill). etcd3_plan
# only chooses the ports (for a bivyd started before etcd), etcd3_start starts the members.
start_etcd3() { etcd3_plan "$@"; etcd3_start; }
etcd3_plan() {
  trap 'rc=$?; set +e; cl_cleanup; (exit $rc); it_teardown' EXIT
  local m cp pp ip listen peers="" urls="" tls=""
  cl_tls_setup "$@"
  [ -n "$CL_TLS_DIR" ] && tls="${ETCD_TLS_ARGS[*]}"
  declare -gA EM_CP EM_PP
  for m in m1 m2 m3; do
    EM_CP[$m]=$(free_port); EM_PP[$m]=$(free_port)
    peers="$peers${peers:+,}$m=http://127.0.0.1:${EM_PP[$m]}"
    urls="$urls${urls:+,}$CL_SCHEME://127.0.0.1:${EM_CP[$m]}"
  done
  for m in m1 m2 m3; do
    cp=${EM_CP[$m]} pp=${EM_PP[$m]}
    listen=$CL_SCHEME://127.0.0.1:$cp
    for ip in "$@"; do listen="$listen,$CL_SCHEME://$ip:$cp"; done
    declare -ga "EM_ARGS_$m=(--name $m --data-dir $T/etcd-$m --listen-client-urls $listen $tls
      --advertise-client-urls $CL_SCHEME://127.0.0.1:$cp --listen-peer-urls http://127.0.0.1:$pp
      --initial-advertise-peer-urls http://127.0.0.1:$pp --initial-cluster $peers --initial-cluster-token bivyt-$$ --heartbeat-interval 50 --election-timeout 500)"
  done
  ETCD_URLS=$urls
  ETCD=$CL_SCHEME://127.0.0.1:${EM_CP[m1]}
}
etcd3_start() {
  local m
  for m in m1 m2 m3; do etcd_member_start "$m"; done
  for m in m1 m2 m3; do wait_for ecurl -sf "$(em_url "$m")/health"; done
}
etcd_member_start() { # MEMBER
  local -n args="EM_ARGS_$1"
  etcd "${args[@]}" >>"$T/etcd-$1.log" 2>&1 &
  echo $! >"$T/etcd-$1.pid"
}
etcd_member_kill() { kill -9 "$(cat "$T/etcd-$1.pid")"; wait "$(cat "$T/etcd-$1.pid")" 2>/dev/null || true; }
# the member that is the raft leader now
etcd_leader() {
  local m
  for m in m1 m2 m3; do
    ecurl -sf -X POST "$(em_url "$m")/v3/maintenance/status" -d '{}' 2>/dev/null |
      jq -e '.leader == .header.member_id' >/dev/null 2>&1 && { echo "$m"; return 0; }
  done
  return 1
}

etcd_member_id() { ecurl -sf -X POST "$(em_url "$1")/v3/maintenance/status" -d '{}' | jq -r .header.member_id; }
# make MEMBER the leader (leadership transfer, no election timeout waited)
etcd_make_leader() {
  local l; l=$(etcd_leader) || return 1
  [ "$l" = "$1" ] && return 0
  ecurl -sf -X POST "$(em_url "$l")/v3/maintenance/transfer-leadership" \
    -d "{\"targetID\": \"$(etcd_member_id "$1")\"}" >/dev/null
  wait_for sh -c "[ \"\$(curl -sf ${CL_TLS_DIR:+--cacert $CL_TLS_DIR/ca.pem --cert $CL_TLS_DIR/client.pem --key $CL_TLS_DIR/client-key.pem} -X POST $(em_url "$1")/v3/maintenance/status -d '{}' | jq -r '.leader == .header.member_id')\" = true ]"
}

# start_node NAME [bivyd options]: a node; NODE_PRE (e.g. nsenter) and NODE_URL apply when set
start_node() {
  local n=$1; shift
  mkdir -p "$T/$n"
  ${NODE_PRE:-} "$BIVYD" --cluster "${NODE_URL:-$ETCD}" --node "$n" --root "$T/$n/root" --state-dir "$T/$n/state" \
    --socket "$T/$n/sock" --cgroup-parent "/$CG_PARENT/$n" --node-cpus 4 --node-memory 1G --lease-ttl "${TTL_S}s" \
    "${NODE_TLS_ARGS[@]}" "$@" 2>>"$T/$n.log" &
  echo $! >"$T/$n.pid"
  echo $! >>"$T/cl.pids"
  wait_for nb "$n" ls
}

# the processes of instance NAME's container on node N (its cgroup), empty when not running there
procs_on() { cat /sys/fs/cgroup/pids/"$CG_PARENT/$1/$2"/cgroup.procs /sys/fs/cgroup/"$CG_PARENT/$1/$2"/cgroup.procs 2>/dev/null || true; }
alive() { kill -0 "$1" 2>/dev/null; }
runs_on() { [ -n "$(procs_on "$1" "$2")" ]; }
# sample: the names of instances (i1..i6, or SAMPLE_INSTS) that run on two nodes at once (bash builtins only, so that
# one round of 18 cgroups takes a few ms)
CGB=/sys/fs/cgroup/pids
is_v2 && CGB=/sys/fs/cgroup
sample() {
  local i n c x
  for i in ${SAMPLE_INSTS:-i1 i2 i3 i4 i5 i6}; do
    c=0
    for n in n1 n2 n3; do
      x=""
      { read -r x <"$CGB/$CG_PARENT/$n/$i"/cgroup.procs; } 2>/dev/null || true
      [ -n "$x" ] && c=$((c + 1))
    done
    [ $c -le 1 ] || echo "$i"
  done
}
# sample every 100 ms in the background (until stop_sampler): no instance on two nodes
start_sampler() {
  rm -f "$T/stop" "$T/twice" "$T/samples"
  (
    while [ ! -e "$T/stop" ]; do
      twice=$(sample)
      [ -z "$twice" ] || echo "$twice" >>"$T/twice"
      echo x >>"$T/samples"
      sleep 0.1
    done
  ) &
  SAMPLER=$!
}
start_sampler_for() { SAMPLE_INSTS="$*"; start_sampler; } # the named instances only
stop_sampler() {
  touch "$T/stop"
  wait "$SAMPLER"
  [ ! -s "$T/twice" ] || fail "an instance ran on two nodes: $(sort -u "$T/twice" | tr '\n' ' ')"
  [ "$(wc -l <"$T/samples")" -ge 10 ] || fail "too few samples"
}
# nodes running instance NAME, by their cgroups
where() { local n; for n in n1 n2 n3; do runs_on "$n" "$1" && echo "$n"; done; true; }

# ls from node N as "name node state" lines
lsn() { nb "$1" ls --format json | jq -r '.[] | "\(.name) \(.node) \(.state)"'; }
node_of() { nb "$1" ls --format json | jq -r --arg n "$2" '.[] | select(.name == $n) | .node'; }
state_of() { nb "$1" ls --format json | jq -r --arg n "$2" '.[] | select(.name == $n) | .state'; }
# every named instance running (ls from node N) on a node other than AVOID, and really there
all_running() {
  local n=$1 avoid=$2; shift 2
  local i nd
  for i in "$@"; do
    [ "$(state_of "$n" "$i")" = running ] || return 1
    nd=$(node_of "$n" "$i")
    [ "$nd" != "$avoid" ] || return 1
    [ "$(where "$i")" = "$nd" ] || return 1
  done
}

up6() {
  local i
  for i in 1 2 3 4 5 6; do
    nb n1 up "i$i" --rootfs "$ROOTFS" --restart always --memory 64M -- sleep 100000 >/dev/null
  done
  wait_for all_running n1 none i1 i2 i3 i4 i5 i6
}

