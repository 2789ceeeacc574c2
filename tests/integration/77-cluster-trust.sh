# bivyd cluster trust: mutual TLS to etcd (certificates made here with openssl), etcd users,
# plain http refused off loopback, and each node's admission policy (--cluster-policy).
# Uses lib-cluster.sh (everything it adds goes at teardown).
TIERS="host"
NEEDS="etcd curl jq ss openssl"

. "$(dirname "${BASH_SOURCE[0]}")/lib-cluster.sh"

cluster_state_is() { [ "$(nb "$1" metrics | awk -v s="bivyd_cluster_state{state=\"$2\"}" '$1 == s {print $2}')" = 1 ]; }
# the keys under PREFIX in etcd, one per line
etcd_keys() { # PREFIX ending in "/" (its range ends at PREFIX-without-/ + "0")
  local end="${1%/}0"
  ecurl -sf -X POST "$ETCD/v3/kv/range" -d "{\"key\":\"$(printf '%s' "$1" | base64 -w0)\",\"range_end\":\"$(printf '%s' "$end" | base64 -w0)\",\"keys_only\":true}" |
    jq -r '.kvs // [] | .[].key | @base64d'
}
# kill node N's bivyd and its instances (the node dies)
kill_node() {
  kill -9 "$(cat "$T/$1.pid")"
  local p
  for p in $(find "$CGB/$CG_PARENT/$1" -name cgroup.procs -exec cat {} + 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
}
policy() { echo "$2" >"$T/$1.policy"; echo "$T/$1.policy"; }
# a bundle running sleep from ROOTFS that also bind-mounts the host's / at /host
evil_bundle() {
  mkdir -p "$T/evil"
  (cd "$T/evil" && "$BIVY" spec) || fail "bivy spec"
  jq --arg r "$ROOTFS" '.root.path = $r | .process.args = ["sleep", "100000"] |
    .mounts += [{"destination": "/host", "type": "bind", "source": "/", "options": ["rbind", "ro"]}]' \
    "$T/evil/config.json" >"$T/evil/c" && mv "$T/evil/c" "$T/evil/config.json"
}

test_cluster_trust_tls_join_and_failover() {
  CL_TLS=1 start_etcd3
  [[ $ETCD_URLS == https://* ]] || fail "etcd not over https: $ETCD_URLS"
  # etcd refuses a client without a certificate: TLS really is mutual here
  ! curl -sf --cacert "$CL_TLS_DIR/ca.pem" "$ETCD/health" >/dev/null 2>&1 || fail "etcd answered without a client certificate"
  NODE_URL=$ETCD_URLS start_node n1
  NODE_URL=$ETCD_URLS start_node n2
  wait_for cluster_state_is n1 joined
  wait_for cluster_state_is n2 joined
  grep -q "cluster: etcd over https" "$T/n1.log" || fail "the log does not say https"
  local i
  for i in 1 2 3 4; do nb n1 up "i$i" --rootfs "$ROOTFS" --restart always --memory 32M -- sleep 100000 >/dev/null; done
  wait_for all_running n1 none i1 i2 i3 i4
  start_sampler_for i1 i2 i3 i4
  local victim; victim=$(node_of n2 i1)
  local other=n1; [ "$victim" = n1 ] && other=n2
  kill_node "$victim"
  wait_for_s 20 all_running "$other" "$victim" i1 i2 i3 i4
  stop_sampler
}

test_cluster_trust_wrong_client_cert_cannot_join() {
  CL_TLS=1 start_etcd
  NODE_TLS_ARGS=(--etcd-cacert "$CL_TLS_DIR/ca.pem" --etcd-cert "$CL_TLS_DIR/other-client.pem" --etcd-key "$CL_TLS_DIR/other-client-key.pem")
  start_node bad
  sleep 2
  cluster_state_is bad joining || fail "a node with another CA's certificate is $(nb bad metrics | grep 'cluster_state.* 1')"
  grep -q "cluster: joining: etcd at https://127.0.0.1:$ECP" "$T/bad.log" || fail "the log does not say joining: $(cat "$T/bad.log")"
  grep -qi "certificate\|ssl\|reset\|handshake" "$T/bad.log" || fail "the log does not name the TLS failure: $(cat "$T/bad.log")"
  assert_eq "$(etcd_keys /bivy/ | grep -c .)" 0 "keys written by a node etcd does not trust"
  # the same node with the right certificate joins
  kill "$(cat "$T/bad.pid")"; wait "$(cat "$T/bad.pid")" 2>/dev/null || true
  NODE_TLS_ARGS=(--etcd-cacert "$CL_TLS_DIR/ca.pem" --etcd-cert "$CL_TLS_DIR/client.pem" --etcd-key "$CL_TLS_DIR/client-key.pem")
  start_node bad
  wait_for cluster_state_is bad joined
  etcd_keys /bivy/nodes/ | grep -qx /bivy/nodes/bad || fail "no membership key after joining"
}

test_cluster_trust_plain_http_non_loopback_refused() {
  expect_fail "--cluster: http://192.0.2.1:2379: plain http to a non-loopback address" \
    "$BIVYD" --cluster http://192.0.2.1:2379 --node x --root "$T/x/root" --state-dir "$T/x/state" --socket "$T/x/sock"
  expect_fail "--insecure-cluster to accept it" "$BIVYD" --cluster http://127.0.0.1:2379,http://10.1.2.3:2379 --node x \
    --root "$T/x/root" --state-dir "$T/x/state" --socket "$T/x/sock"
  [ ! -e "$T/x/state" ] || fail "a refused start left its state dir"
  # accepted with --insecure-cluster (starts joining, says so in the log)
  mkdir -p "$T/x"
  "$BIVYD" --cluster http://192.0.2.1:2379 --insecure-cluster --node x --root "$T/x/root" --state-dir "$T/x/state" \
    --socket "$T/x/sock" --cgroup-parent "/$CG_PARENT/x" 2>>"$T/x.log" &
  echo $! >"$T/x.pid"; echo $! >>"$T/cl.pids"
  wait_for test -S "$T/x/sock"
  wait_for grep -q "cluster: insecure:" "$T/x.log"
  grep -q "cluster: insecure:" "$T/x.log" || fail "no insecure warning: $(cat "$T/x.log")"
  kill "$(cat "$T/x.pid")"
}

test_cluster_trust_policy_refuses_host_root_bind() {
  CL_TLS=1 start_etcd3
  local n
  for n in n1 n2 n3; do NODE_URL=$ETCD_URLS start_node "$n" --cluster-policy "$(policy "$n" '{"host_bind_mounts": false}')"; done
  for n in n1 n2 n3; do wait_for cluster_state_is "$n" joined; done
  evil_bundle
  start_sampler_for evil ok
  nb n1 up evil --bundle "$T/evil" >/dev/null || fail "up evil"
  nb n1 up ok --rootfs "$ROOTFS" -- sleep 100000 >/dev/null || fail "up ok"
  refused_by_all() { [ "$(nb n2 ls --format json | jq '[.[] | select(.name == "evil") | .refused_by // {} | keys[]] | length')" = 3 ]; }
  wait_for refused_by_all
  assert_eq "$(state_of n1 evil)" pending "evil"
  for n in n1 n2 n3; do
    nb "$n" monitor --format json evil >"$T/$n.ev" || fail "monitor"
    jq -se --arg n "$n" 'any(.type == "refused" and .node == $n and .rule == "host_bind_mounts" and (.detail | test("host path \"/\"")))' \
      "$T/$n.ev" >/dev/null || fail "$n: no refused event naming host_bind_mounts: $(cat "$T/$n.ev")"
  done
  wait_for all_running n1 none ok
  sleep 2 # a few more rounds of placement: still nothing runs it
  stop_sampler
  assert_eq "$(where evil)" "" "evil runs on"
  for n in n1 n2 n3; do
    [ ! -e "$T/$n/root/evil" ] || fail "$n created a container for evil"
  done
  ! grep -h ' /host ' /proc/[0-9]*/mountinfo 2>/dev/null | grep -q . || fail "a /host mount exists"
}

test_cluster_trust_policy_placement_moves_on() {
  start_etcd
  start_node n1 --cluster-policy "$(policy n1 '{"max_memory": "64M"}')"
  start_node n2
  wait_for cluster_state_is n1 joined
  wait_for cluster_state_is n2 joined
  local i
  # n1 refuses anything above 64M: placement puts these on n2, although n1 would be the least loaded
  for i in 1 2 3; do nb n1 up "big$i" --rootfs "$ROOTFS" --memory 128M -- sleep 100000 >/dev/null; done
  wait_for all_running n1 n1 big1 big2 big3
  for i in 1 2 3; do assert_eq "$(where "big$i")" n2 "big$i runs on"; done
  nb n1 monitor --format json big1 >"$T/n1.ev"
  jq -se 'any(.type == "refused" and .node == "n1" and .rule == "max_memory" and (.detail | test("above this node")))' \
    "$T/n1.ev" >/dev/null || fail "n1 emitted no refused event: $(cat "$T/n1.ev")"
  # a small one goes to n1 (least loaded); a resize past n1's ceiling is not applied there
  nb n1 up small --rootfs "$ROOTFS" --memory 32M -- sleep 100000 >/dev/null
  wait_for all_running n1 n2 small
  nb n2 resize small --memory 128M >/dev/null || fail "resize"
  wait_for sh -c "\"$BIVY\" --socket \"$T/n1/sock\" monitor --format json small | jq -se 'any(.type == \"resize-refused\" and .rule == \"max_memory\")' >/dev/null"
  local lim
  lim=$(cat "$CGB/../memory/$CG_PARENT/n1/small/memory.limit_in_bytes" 2>/dev/null || cat "/sys/fs/cgroup/$CG_PARENT/n1/small/memory.max")
  assert_eq "$lim" 33554432 "small's memory limit on n1"
}

test_cluster_trust_auth_user_password() {
  CL_TLS=1 start_etcd
  local b64p b64e
  b64p=$(printf /bivy/ | base64 -w0) b64e=$(printf /bivy0 | base64 -w0)
  ec() { ecurl -sf -X POST "$ETCD/v3/auth/$1" -d "$2" >/dev/null || fail "etcd auth/$1"; }
  ec user/add '{"name":"root","password":"rootpw"}'
  ec user/grant '{"user":"root","role":"root"}'
  ec role/add '{"name":"bivy-node"}'
  ec role/grant "{\"name\":\"bivy-node\",\"perm\":{\"permType\":\"READWRITE\",\"key\":\"$b64p\",\"range_end\":\"$b64e\"}}"
  ec user/add '{"name":"node-n1","password":"n1-secret"}'
  ec user/grant '{"user":"node-n1","role":"bivy-node"}'
  ec enable '{}'
  printf 'n1-secret\n' >"$T/pw"; chmod 600 "$T/pw"
  printf 'wrong\n' >"$T/badpw"; chmod 600 "$T/badpw"
  start_node n1 --etcd-user node-n1 --etcd-password-file "$T/pw"
  wait_for cluster_state_is n1 joined || fail "n1 did not join: $(tail -3 "$T/n1.log")"
  nb n1 up a1 --rootfs "$ROOTFS" -- sleep 100000 >/dev/null
  wait_for all_running n1 none a1
  [ "$(nb n1 metrics | awk '$1 == "bivyd_cluster_etcd_auth_total" {print $2}')" -ge 1 ] || fail "no etcd token counted"
  start_node n2 --etcd-user node-n1 --etcd-password-file "$T/badpw"
  sleep 1.5
  cluster_state_is n2 joining || fail "n2 joined with a wrong password"
  grep -q "authentication failed" "$T/n2.log" || fail "the log does not say why: $(cat "$T/n2.log")"
  # without a token, etcd answers nothing (auth really is on)
  ! curl -sf --cacert "$CL_TLS_DIR/ca.pem" --cert "$CL_TLS_DIR/client.pem" --key "$CL_TLS_DIR/client-key.pem" \
    -X POST "$ETCD/v3/kv/range" -d "{\"key\":\"$b64p\",\"range_end\":\"$b64e\"}" | jq -e '.kvs' >/dev/null ||
    fail "etcd answered a range without a token"
  chmod 644 "$T/pw"
  expect_fail "--etcd-password-file $T/pw: readable by group or others (mode 0644)" \
    "$BIVYD" --cluster "$ETCD" --node n3 "${NODE_TLS_ARGS[@]}" --etcd-user node-n1 --etcd-password-file "$T/pw" \
    --root "$T/n3/root" --state-dir "$T/n3/state" --socket "$T/n3/sock"
}

test_cluster_trust_bad_input() {
  local base=(--node x --root "$T/x/root" --state-dir "$T/x/state" --socket "$T/x/sock")
  expect_fail "--etcd-cert and --etcd-key go together" "$BIVYD" --cluster https://127.0.0.1:1 --etcd-cert /etc/hostname "${base[@]}"
  expect_fail "--etcd-cacert $T/nope: No such file" "$BIVYD" --cluster https://127.0.0.1:1 --etcd-cacert "$T/nope" "${base[@]}"
  expect_fail "--etcd-cacert: needs https:// URLs" "$BIVYD" --cluster http://127.0.0.1:1 --etcd-cacert /etc/hostname "${base[@]}"
  expect_fail "--etcd-user needs --etcd-password-file" "$BIVYD" --cluster http://127.0.0.1:1 --etcd-user u "${base[@]}"
  expect_fail "need --cluster URL" "$BIVYD" --cluster-policy /dev/null "${base[@]}"
  expect_fail "--cluster-policy $(policy p '{"hostfs": true}'): hostfs: unknown key" \
    "$BIVYD" --cluster http://127.0.0.1:1 --cluster-policy "$T/p.policy" "${base[@]}"
  policy p '{"max_memory": "1G"' >/dev/null
  expect_fail "--cluster-policy $T/p.policy: line" \
    "$BIVYD" --cluster http://127.0.0.1:1 --cluster-policy "$T/p.policy" "${base[@]}"
  expect_fail "--cluster-policy $(policy p '{"max_cpus": -1}'): max_cpus: must be a number" \
    "$BIVYD" --cluster http://127.0.0.1:1 --cluster-policy "$T/p.policy" "${base[@]}"
  [ ! -e "$T/x/state" ] || fail "a refused start left its state dir"
}
