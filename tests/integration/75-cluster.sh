# bivyd cluster mode (--cluster): etcd on loopback (random free ports, a temporary data dir),
# three bivyd nodes with separate state roots (--state-dir/--socket/--root under $T, cgroups
# under the test's parent, one sub-parent per node). Placement, failover after a node dies,
# fencing of a node cut off from etcd (never two copies of an instance), migrate, drain,
# pending, an etcd restart, bad input. Everything the tests add (etcd, nodes, instances,
# cgroups, a network namespace with its veth and nft rules) goes at teardown.
TIERS="host"
NEEDS="etcd curl jq ip nft nsenter ss"

. "$(dirname "${BASH_SOURCE[0]}")/lib-cluster.sh"

test_cluster_spread_ls_failover() {
  start_etcd
  start_node n1; start_node n2; start_node n3
  up6
  # spread: two per node (equal capacity: least loaded first), seen alike from every node
  for n in n1 n2 n3; do
    assert_eq "$(lsn "$n" | awk '{print $2}' | sort | uniq -c | awk '{print $1}' | tr '\n' ' ')" "2 2 2 " "spread seen from $n"
  done
  assert_eq "$(lsn n2)" "$(lsn n3)" "ls differs between nodes"
  nb n3 ls | grep -q '^NODE ' || fail "no NODE column: $(nb n3 ls)"
  victims=$(lsn n2 | awk '$2 == "n1" {print $1}')
  [ -n "$victims" ] || fail "nothing on n1"
  # n1 dies with its instances
  kill -9 "$(cat "$T/n1.pid")"
  for i in $victims; do kill -9 $(procs_on n1 "$i") 2>/dev/null || true; done
  for i in $victims; do [ -z "$(where "$i")" ] || fail "$i still runs after the kill"; done
  # adopted by n2/n3 within TTL + 2 s, each exactly once
  wait_for_s $((TTL_S + 2)) all_running n2 n1 i1 i2 i3 i4 i5 i6
  for i in i1 i2 i3 i4 i5 i6; do assert_eq "$(where "$i" | wc -l)" 1 "copies of $i"; done
  for i in $victims; do
    nd=$(node_of n3 "$i")
    nb "$nd" monitor --format json "$i" | jq -e -s 'any(.type == "claimed")' >/dev/null || fail "no claim event for $i on $nd"
  done
  # up/down/resize from any node; the owner applies them
  i=$(echo "$victims" | head -1)
  owner=$(node_of n2 "$i")
  other=n2; [ "$owner" = n2 ] && other=n3
  nb "$other" resize "$i" --memory 96M >/dev/null
  wait_for sh -c "grep -qx 100663296 /sys/fs/cgroup/memory/$CG_PARENT/$owner/$i/memory.limit_in_bytes"
  nb "$other" down -t 0 "$i" >/dev/null
  wait_for sh -c "[ \"\$(\"$BIVY\" --socket \"$T/$other/sock\" ls --format json | jq -r '.[] | select(.name == \"$i\") | .state')\" = stopped ]"
  [ -z "$(where "$i")" ] || fail "$i runs after down"
  nb "$other" up "$i" >/dev/null
  wait_for all_running n3 n1 "$i"
  # what only the owner has (logs, inspect) is refused elsewhere with the owner's name
  owner=$(node_of n2 "$i")
  other=n2; [ "$owner" = n2 ] && other=n3
  expect_fail "the instance runs on node $owner" nb "$other" logs "$i"
  assert_eq "$(nb "$owner" inspect "$i" | jq -r .name)" "$i"
  assert_eq "$(nb n2 ls --format json | jq -r --arg n "$i" '.[] | select(.name == $n) | .limits.memory')" 100663296
}

test_cluster_cut_off_fences_first() {
  # n3 lives in its own network namespace, reaching etcd through a veth; the cut drops its
  # traffic to etcd's port with nft inside that namespace
  CL_NS=bivyt-cl-$$
  local sub=$((RANDOM % 200 + 20)) vh=bvh$$ vn=bvn$$
  CL_VETH=$vh
  ip netns add "$CL_NS"
  ip link add "$vh" type veth peer name "$vn" netns "$CL_NS"
  ip addr add "10.231.$sub.1/30" dev "$vh"
  ip link set "$vh" up
  ip -n "$CL_NS" addr add "10.231.$sub.2/30" dev "$vn"
  ip -n "$CL_NS" link set "$vn" up
  ip -n "$CL_NS" link set lo up
  # over mutual TLS: n3 reaches etcd at a non-loopback address, where plain http is refused
  CL_TLS=1 start_etcd "10.231.$sub.1"
  start_node n1; start_node n2
  NODE_PRE="nsenter --net=/run/netns/$CL_NS" NODE_URL="https://10.231.$sub.1:$ECP" start_node n3
  up6
  mine=$(lsn n1 | awk '$2 == "n3" {print $1}')
  [ "$(echo "$mine" | wc -w)" = 2 ] || fail "n3 should run 2 instances: $(lsn n1)"
  start_sampler
  nsenter --net="/run/netns/$CL_NS" nft -f - <<NFT
table inet bivytest {
  chain out { type filter hook output priority 0; policy accept; tcp dport $ECP drop; }
}
NFT
  wait_for_s $((TTL_S * 3)) all_running n1 n3 i1 i2 i3 i4 i5 i6
  stop_sampler
  # n3 stopped its instances (fencing) before anyone else started them
  fenced=$(nb n3 monitor --format json | jq -s '[.[] | select(.type == "fenced")][0].mono_ns')
  [ "$fenced" != null ] || fail "no fenced event on n3: $(nb n3 monitor --format json | tail -5)"
  for i in $mine; do
    stop=$(nb n3 monitor --format json "$i" | jq -s '[.[] | select(.type == "exit")] | last | .mono_ns')
    nd=$(node_of n1 "$i")
    start=$(nb "$nd" monitor --format json "$i" | jq -s '[.[] | select(.type == "start")] | last | .mono_ns')
    [ "$stop" != null ] && [ "$start" != null ] || fail "$i: events missing (stop $stop, start $start)"
    [ "$stop" -lt "$start" ] || fail "$i started on $nd ($start) before n3 stopped it ($stop)"
  done
  # the cut heals: n3 joins again with a new lease and runs nothing twice
  nsenter --net="/run/netns/$CL_NS" nft delete table inet bivytest
  wait_for sh -c "\"$BIVY\" --socket \"$T/n1/sock\" ls --format json | jq -e '.' >/dev/null && curl -s --cacert $CL_TLS_DIR/ca.pem --cert $CL_TLS_DIR/client.pem --key $CL_TLS_DIR/client-key.pem $ETCD/v3/kv/range -d '{\"key\":\"$(printf /bivy/nodes/n3 | base64)\"}' | grep -q kvs"
  for i in i1 i2 i3 i4 i5 i6; do assert_eq "$(where "$i" | wc -l)" 1 "copies of $i after the heal"; done
}

test_cluster_dead_bivyd_is_fenced_by_its_guard() {
  # only bivyd dies (SIGKILL, nothing can run in it): its fence guard kills the instances
  # before the lease expires, so they never run twice
  start_etcd
  start_node n1; start_node n2; start_node n3
  up6
  mine=$(lsn n1 | awk '$2 == "n3" {print $1}')
  [ "$(echo "$mine" | wc -w)" = 2 ] || fail "n3 should run 2 instances: $(lsn n1)"
  guard=$(pgrep -P "$(cat "$T/n3.pid")" -x bivyd-fence)
  [ -n "$guard" ] || fail "no fence guard under n3's bivyd"
  start_sampler
  kill -9 "$(cat "$T/n3.pid")"
  wait_for_s $((TTL_S * 3)) all_running n1 n3 i1 i2 i3 i4 i5 i6
  stop_sampler
  # the guard went away by itself once done
  wait_for sh -c "! kill -0 $guard"
  for i in i1 i2 i3 i4 i5 i6; do assert_eq "$(where "$i" | wc -l)" 1 "copies of $i"; done
}

test_cluster_migrate_drain_pending() {
  start_etcd
  start_node n1; start_node n2; start_node n3
  for i in a b c; do nb n1 up "$i" --rootfs "$ROOTFS" --restart always --memory 64M -- sleep 100000 >/dev/null; done
  wait_for all_running n1 none a b c
  from=$(node_of n1 a)
  to=n1; [ "$from" = n1 ] && to=n2
  pid_before=$(procs_on "$from" a | head -1)
  out=$(nb n3 migrate a --to "$to" -t 0)
  assert_contains "$out" "a: moved $from -> $to"
  assert_eq "$(node_of n2 a)" "$to"
  assert_eq "$(where a)" "$to"
  kill -0 "$pid_before" 2>/dev/null && fail "the old copy of a still runs"
  # drain: everything leaves n2, and new instances avoid it
  nb n1 drain n2 -t 0 >/dev/null
  assert_eq "$(lsn n1 | awk '$2 == "n2"' )" ""
  wait_for all_running n1 n2 a b c
  nb n1 up d --rootfs "$ROOTFS" --memory 64M -- sleep 100000 >/dev/null
  wait_for all_running n1 n2 d
  nb n3 migrate d --to n2 >/dev/null 2>&1 && fail "migrate to a drained node succeeded"
  expect_fail "node n2 is drained" nb n3 migrate d --to n2
  nb n1 undrain n2 >/dev/null
  nb n1 migrate d --to n2 -t 0 >/dev/null
  assert_eq "$(where d)" n2
  # fits nowhere (1G nodes): stays pending, with an event
  nb n1 up big --rootfs "$ROOTFS" --memory 2G -- sleep 100000 >/dev/null
  sleep 1
  assert_eq "$(state_of n2 big)" pending
  assert_eq "$(where big)" ""
  nb n1 monitor --format json big | jq -e -s 'any(.type == "pending")' >/dev/null || fail "no pending event"
  nb n2 ls | grep -E '^-  +big +pending' >/dev/null || fail "ls: $(nb n2 ls)"
  nb n1 down big >/dev/null
  nb n1 down --rm big >/dev/null 2>&1 || nb n1 rm big >/dev/null 2>&1 || true
  # bad input
  expect_fail 'unknown node "nope" (live nodes: n1, n2, n3)' nb n1 migrate a --to nope
  expect_fail "--to NODE is required" nb n1 migrate a
  expect_fail 'no instance named "zz"' nb n1 migrate zz --to n1
  expect_fail 'unknown node "nope"' nb n1 drain nope
  expect_fail 'unknown node "nope"' nb n1 undrain nope
}

test_cluster_etcd_restart() {
  start_etcd
  start_node n1; start_node n2
  for i in x y z; do nb n1 up "$i" --rootfs "$ROOTFS" --restart always --memory 64M -- sleep 100000 >/dev/null; done
  wait_for all_running n1 none x y z
  # etcd stops for longer than the fencing deadline: the nodes stop their instances...
  kill -TERM "$(cat "$T/etcd.pid")"
  wait "$(cat "$T/etcd.pid")" 2>/dev/null || true
  wait_for sh -c "[ -z \"\$(cat /sys/fs/cgroup/pids/$CG_PARENT/*/*/cgroup.procs 2>/dev/null)\" ]"
  # ...and once etcd is back (same data dir), no instance is lost, none runs twice
  etcd "${ETCD_ARGS[@]}" >>"$T/etcd.log" 2>&1 &
  echo $! >"$T/etcd.pid"
  wait_for curl -sf "$ETCD/health"
  wait_for_s 15 all_running n1 none x y z
  for i in x y z; do assert_eq "$(where "$i" | wc -l)" 1 "copies of $i"; done
}

test_cluster_bad_input() {
  expect_fail '--cluster: invalid URL "ftp://x"' "$BIVYD" --cluster ftp://x --node a --state-dir "$T/s0" --socket "$T/s0.sock"
  expect_fail '--cluster: invalid URL "http://h:99999"' "$BIVYD" --cluster http://127.0.0.1:2379,http://h:99999 --node a --state-dir "$T/s0" --socket "$T/s0.sock"
  expect_fail "--cluster needs --node" "$BIVYD" --cluster http://127.0.0.1:1 --state-dir "$T/s0" --socket "$T/s0.sock"
  expect_fail '--node: invalid name "a/b"' "$BIVYD" --cluster http://127.0.0.1:1 --node a/b --state-dir "$T/s0" --socket "$T/s0.sock"
  expect_fail "--node-memory" "$BIVYD" --cluster http://127.0.0.1:1 --node a --node-memory lots --state-dir "$T/s0" --socket "$T/s0.sock"
  expect_fail "need --cluster" "$BIVYD" --node a --state-dir "$T/s0" --socket "$T/s0.sock"
  start_etcd
  start_node n1
  expect_fail "--node n1: a live node of that name is already in the cluster" "$BIVYD" --cluster "$ETCD" --node n1 \
    --root "$T/r0" --state-dir "$T/s0" --socket "$T/s0.sock"
  expect_fail "no such instance" nb n1 up nothere
  expect_fail "--memory" nb n1 up x --rootfs "$ROOTFS" --memory lots -- true
}
