# bivyd cluster mode against a three-member etcd on loopback: a dead, stopped or re-elected
# member costs no lease renewal (the endpoint failover within one call's deadline), and a
# bivyd started before etcd joins once etcd answers. Uses lib-cluster.sh (everything it adds
# goes at teardown).
TIERS="host"
NEEDS="etcd curl jq ss"

. "$(dirname "${BASH_SOURCE[0]}")/lib-cluster.sh"

metric() { nb "$1" metrics | awk -v m="$2" '$1 == m {print $2}'; }
pids_of() { nb "$1" ls --format json | jq -r 'sort_by(.name) | map("\(.name)=\(.pid)") | join(" ")'; }
no_fence() { ! nb "$1" monitor --format json | jq -se 'any(.type == "fenced")' >/dev/null; }

test_cluster_ha_member_loss_costs_no_renewal() {
  start_etcd3
  # m3 leads, so that the members that fail below (m1, then the one the nodes moved to) are
  # followers: losing a follower needs no election (the leader's loss is the last step)
  etcd_make_leader m3
  NODE_URL=$ETCD_URLS start_node n1
  NODE_URL=$ETCD_URLS start_node n2
  local i
  for i in 1 2 3 4; do nb n1 up "h$i" --rootfs "$ROOTFS" --restart always --memory 32M -- sleep 100000 >/dev/null; done
  wait_for sh -c "[ \"\$(\"$BIVY\" --socket \"$T/n1/sock\" ls --format json | jq '[.[] | select(.state == \"running\")] | length')\" = 4 ]"
  local before; before=$(pids_of n1)
  assert_eq "$(nb n1 metrics | grep -c "bivyd_cluster_etcd_endpoint{url=\"http://127.0.0.1:${EM_CP[m1]}\"}")" 1 "n1 starts on m1"
  # 1. the member both nodes use dies: the next call moves on at once
  etcd_member_kill m1
  sleep $((TTL_S * 2))
  # 2. the member they moved to stops answering (SIGSTOP: connections are accepted, nothing is
  #    answered, like a partition): the call's share for it runs out, the next member answers
  etcd_member_start m1
  wait_for curl -sf "http://127.0.0.1:${EM_CP[m1]}/health"
  local cur
  cur=$(nb n1 metrics | sed -n 's/^bivyd_cluster_etcd_endpoint{url="http:\/\/127.0.0.1:\([0-9]*\)"}.*/\1/p')
  local m stopped=""
  for m in m1 m2 m3; do [ "${EM_CP[$m]}" = "$cur" ] && stopped=$m; done
  [ -n "$stopped" ] || fail "n1's endpoint $cur is none of the members"
  [ "$stopped" != m3 ] || fail "n1 moved to the leader m3, not to the next member m2"
  [ "$(etcd_leader)" = m3 ] || fail "the leader changed: $(etcd_leader)"
  kill -STOP "$(cat "$T/etcd-$stopped.pid")"
  sleep $((TTL_S * 2))
  kill -CONT "$(cat "$T/etcd-$stopped.pid")"
  for n in n1 n2; do
    assert_eq "$(metric "$n" bivyd_cluster_lease_renew_failures_total)" 0 "$n: renewals that failed"
    local want=1; [ "$n" = n1 ] && want=2 # n2 may not have used the stopped member
    [ "$(metric "$n" bivyd_cluster_etcd_failovers_total)" -ge $want ] || fail "$n: failovers: $(nb "$n" metrics | grep etcd)"
    # a renewal every TTL/3 = 1 s; the stopped member delays one by its share of a call
    awk -v g="$(metric "$n" bivyd_cluster_lease_renew_gap_max_seconds)" 'BEGIN {exit !(g < 1.8)}' ||
      fail "$n: renewal gap $(metric "$n" bivyd_cluster_lease_renew_gap_max_seconds) s"
    no_fence "$n" || fail "$n fenced"
  done
  assert_eq "$(pids_of n1)" "$before" "no instance restarted"
  # 3. the leader dies: a new one is elected (fast elections in these members), nothing fences
  local leader; leader=$(etcd_leader) || fail "no etcd leader"
  etcd_member_kill "$leader"
  sleep $((TTL_S * 2))
  for n in n1 n2; do no_fence "$n" || fail "$n fenced after the leader ($leader) died"; done
  assert_eq "$(pids_of n1)" "$before" "no instance restarted after the leader died"
}

cluster_state_is() { [ "$(nb "$1" metrics | awk -v s="bivyd_cluster_state{state=\"$2\"}" '$1 == s {print $2}')" = 1 ]; }
running_count() { nb "$1" ls --format json 2>/dev/null | jq '[.[] | select(.state == "running")] | length'; }

test_cluster_ha_bivyd_started_before_etcd_joins() {
  etcd3_plan
  NODE_URL=$ETCD_URLS start_node n1   # answers although no member is up yet
  NODE_URL=$ETCD_URLS start_node n2
  cluster_state_is n1 joining || fail "n1 not joining: $(nb n1 metrics | grep cluster_state)"
  nb n1 ls >/dev/null 2>"$T/ls.err"
  grep -q "bivy: ls: cluster joining: this node's instances only (last error: etcd at http://127.0.0.1:" "$T/ls.err" ||
    fail "ls does not say joining: $(cat "$T/ls.err")"
  assert_eq "$(nb n1 ls --format json 2>/dev/null)" "[]"
  expect_fail "up: cluster joining (etcd at" nb n1 up j1 --rootfs "$ROOTFS" -- sleep 100000
  grep -q "cluster: joining: etcd at" "$T/n1.log" || fail "the log does not say joining"
  etcd3_start
  wait_for cluster_state_is n1 joined
  wait_for cluster_state_is n2 joined
  nb n1 monitor --format json | jq -se 'any(.type == "joined")' >/dev/null || fail "no joined event"
  local i
  for i in 1 2 3 4; do nb n1 up "j$i" --rootfs "$ROOTFS" --restart always --memory 32M -- sleep 100000 >/dev/null; done
  wait_for sh -c "[ \"\$(\"$BIVY\" --socket \"$T/n1/sock\" ls --format json | jq '[.[] | select(.state == \"running\")] | length')\" = 4 ]"
  for i in 1 2 3 4; do assert_eq "$(where "j$i" | wc -l)" 1 "copies of j$i"; done
  [ "$(nb n1 ls --format json | jq '[.[].node] | unique | length')" = 2 ] || fail "not spread over both nodes: $(lsn n1)"
}

test_cluster_ha_reads_answer_during_outage() {
  start_etcd3
  NODE_URL=$ETCD_URLS start_node n1
  NODE_URL=$ETCD_URLS start_node n2
  local i m
  for i in 1 2; do nb n1 up "o$i" --rootfs "$ROOTFS" --restart always --memory 32M -- sleep 100000 >/dev/null; done
  wait_for sh -c "[ \"\$(\"$BIVY\" --socket \"$T/n1/sock\" ls --format json | jq '[.[] | select(.state == \"running\")] | length')\" = 2 ]"
  for m in m1 m2 m3; do etcd_member_kill "$m"; done
  wait_for cluster_state_is n1 disconnected
  # reads answer from the last view, marked stale with its age
  nb n1 ls --format json >"$T/ls.json" 2>"$T/ls.err"
  assert_eq "$(jq 'length' "$T/ls.json")" 2 "instances in the stale view"
  jq -e 'all(.[]; .stale_ms > 0)' "$T/ls.json" >/dev/null || fail "no stale_ms: $(cat "$T/ls.json")"
  grep -q "bivy: ls: cluster disconnected: the cluster's view as of" "$T/ls.err" || fail "ls: $(cat "$T/ls.err")"
  nb n1 inspect o1 >"$T/insp" 2>&1 || grep -q "ran on node" "$T/insp" || fail "inspect: $(cat "$T/insp")"
  # writes fail at once, naming the cluster state
  expect_fail "up: cluster disconnected (etcd at" nb n1 up o3 --rootfs "$ROOTFS" -- sleep 100000
  expect_fail "down: cluster disconnected" nb n1 down o1
  # etcd comes back: no instance lost, none twice
  for m in m1 m2 m3; do etcd_member_start "$m"; done
  wait_for cluster_state_is n1 joined
  wait_for sh -c "[ \"\$(\"$BIVY\" --socket \"$T/n1/sock\" ls --format json | jq '[.[] | select(.state == \"running\")] | length')\" = 2 ]"
  for i in 1 2; do assert_eq "$(where "o$i" | wc -l)" 1 "copies of o$i"; done
  nb n1 ls --format json | jq -e 'all(.[]; has("stale_ms") | not)' >/dev/null || fail "still stale after the outage"
}

pid_of() { nb "$1" ls --format json | jq -r --arg n "$2" '.[] | select(.name == $n) | .pid'; }

# the three policies through a full etcd outage (all members down 10 s): fenced ones stop at
# the deadline and come back, keep and relaxed=30s ones run on with the same process,
# relaxed=5s ones stop at their own deadline
test_cluster_ha_policies_through_etcd_outage() {
  start_etcd3
  NODE_URL=$ETCD_URLS start_node n1
  local i m
  nb n1 up f1 --rootfs "$ROOTFS" --restart always --memory 32M --failover fenced -- sleep 100000 >/dev/null
  nb n1 up k1 --rootfs "$ROOTFS" --restart always --memory 32M --failover keep -- sleep 100000 >/dev/null
  nb n1 up r1 --rootfs "$ROOTFS" --restart always --memory 32M --failover relaxed=30s -- sleep 100000 >/dev/null
  nb n1 up r2 --rootfs "$ROOTFS" --restart always --memory 32M --failover relaxed=5s -- sleep 100000 >/dev/null
  wait_for sh -c "[ \"\$(\"$BIVY\" --socket \"$T/n1/sock\" ls --format json | jq '[.[] | select(.state == \"running\")] | length')\" = 4 ]"
  assert_eq "$(nb n1 ls --format json | jq -r 'sort_by(.name) | map(.failover) | join(" ")')" "fenced keep relaxed=30s relaxed=5s"
  local k1 r1 f1 r2
  k1=$(pid_of n1 k1) r1=$(pid_of n1 r1) f1=$(pid_of n1 f1) r2=$(pid_of n1 r2)
  for m in m1 m2 m3; do etcd_member_kill "$m"; done
  sleep 10
  # while etcd is down: f1 and r2 were stopped, k1 and r1 still run
  runs_on n1 f1 && fail "f1 (fenced) still runs with etcd down"
  runs_on n1 r2 && fail "r2 (relaxed=5s) still runs 10 s into the outage"
  alive "$k1" || fail "k1 (keep) died in the outage"
  alive "$r1" || fail "r1 (relaxed=30s) died in the outage"
  for m in m1 m2 m3; do etcd_member_start "$m"; done
  wait_for cluster_state_is n1 joined
  local k=0
  while [ "$(running_count n1)" != 4 ] && [ $k -lt 100 ]; do sleep 0.1; k=$((k + 1)); done
  [ "$(running_count n1)" = 4 ] || fail "not all running again: $(lsn n1 | tr '\n' ';') $(grep -v 'event.*health' "$T/n1.log" | tail -8)"
  assert_eq "$(pid_of n1 k1)" "$k1" "k1 kept its process"
  assert_eq "$(pid_of n1 r1)" "$r1" "r1 kept its process"
  [ "$(pid_of n1 f1)" != "$f1" ] || fail "f1 was not restarted"
  [ "$(pid_of n1 r2)" != "$r2" ] || fail "r2 was not restarted"
  nb n1 monitor --format json r2 >"$T/r2.events" || fail "monitor r2: $(cat "$T/r2.events")"
  jq -se 'any(.type == "fenced" and .reason == "relaxed deadline passed")' "$T/r2.events" >/dev/null ||
    fail "no fenced event for r2: $(cat "$T/r2.events")"
  for i in f1 k1 r1 r2; do assert_eq "$(where "$i" | wc -l)" 1 "copies of $i"; done
}

# a node's bivyd dies: its fenced instance moves, its keep instance runs on and is never
# started elsewhere; the node's next bivyd (its lease expired) re-adopts and reclaims it
test_cluster_ha_keep_is_never_moved() {
  start_etcd3
  NODE_URL=$ETCD_URLS start_node n1
  nb n1 up f1 --rootfs "$ROOTFS" --restart always --memory 32M -- sleep 100000 >/dev/null
  nb n1 up k1 --rootfs "$ROOTFS" --restart always --memory 32M --failover keep -- sleep 100000 >/dev/null
  wait_for sh -c "[ \"\$(\"$BIVY\" --socket \"$T/n1/sock\" ls --format json | jq '[.[] | select(.state == \"running\")] | length')\" = 2 ]"
  NODE_URL=$ETCD_URLS start_node n2
  local k1; k1=$(pid_of n1 k1)
  assert_eq "$(nb n2 ls --format json | jq -r '.[] | select(.name == "k1") | .home')" n1 "k1's home"
  kill -9 "$(cat "$T/n1.pid")"
  # f1 runs on n2 once n1's lease expired; k1 stays on n1 and nowhere else
  wait_for_s $((TTL_S * 4)) sh -c "[ \"\$(\"$BIVY\" --socket \"$T/n2/sock\" ls --format json | jq -r '.[] | select(.name == \"f1\") | .node + \" \" + .state')\" = 'n2 running' ]"
  sleep 2
  alive "$k1" || fail "k1 (keep) was killed with its node's bivyd"
  assert_eq "$(where k1)" n1 "k1 only on its node"
  assert_eq "$(where f1)" n2 "f1 moved"
  # nobody can stop the copy on n1 now, so k1 cannot be moved either
  expect_fail "migrate k1: a keep instance whose node n1 is unreachable may still run there" nb n2 migrate k1 --to n2
  assert_eq "$(where k1)" n1 "k1 only on its node after the refused migrate"
  NODE_URL=$ETCD_URLS start_node n1
  wait_for sh -c "[ \"\$(\"$BIVY\" --socket \"$T/n2/sock\" ls --format json | jq -r '.[] | select(.name == \"k1\") | .node + \" \" + .state')\" = 'n1 running' ]"
  assert_eq "$(pid_of n1 k1)" "$k1" "k1 re-adopted with its process"
  nb n1 monitor --format json k1 | jq -se 'any(.type == "reclaimed")' >/dev/null || fail "no reclaimed event"
  assert_eq "$(where k1)" n1
}

# NODE NAME 'WHERE STATE [HOME]': what ls on NODE says of instance NAME
ls_says() {
  [ "$(nb "$1" ls --format json | jq -r --arg n "$2" '.[] | select(.name == $n) | [.node, .state, .home // empty] | join(" ")')" = "$3" ]
}

# a clean leave (SIGTERM) stops the node's instances and says so: a relaxed one is started
# elsewhere at once (nobody waits D for a copy that cannot run), a keep one waits for its
# home; a drain of the home moves the keep instance to a new home
test_cluster_ha_clean_leave() {
  start_etcd3
  NODE_URL=$ETCD_URLS start_node n1
  nb n1 up r1 --rootfs "$ROOTFS" --restart always --memory 32M --failover relaxed=30s -- sleep 100000 >/dev/null
  nb n1 up k1 --rootfs "$ROOTFS" --restart always --memory 32M --failover keep -- sleep 100000 >/dev/null
  wait_for ls_says n1 r1 "n1 running n1"
  wait_for ls_says n1 k1 "n1 running n1"
  NODE_URL=$ETCD_URLS start_node n2
  kill -TERM "$(cat "$T/n1.pid")"
  wait "$(cat "$T/n1.pid")" 2>/dev/null || true
  [ -z "$(where r1)" ] && [ -z "$(where k1)" ] || fail "a clean leave left instances running: r1 on $(where r1), k1 on $(where k1)"
  wait_for_s $((TTL_S * 2)) ls_says n2 r1 "n2 running n2" # well before relaxed=30s
  sleep 1
  assert_eq "$(where k1)" "" "k1 (keep) started away from its home"
  NODE_URL=$ETCD_URLS start_node n1
  wait_for ls_says n2 k1 "n1 running n1"
  nb n2 drain n1 -t 0 >/dev/null
  wait_for ls_says n2 k1 "n2 running n2"
  assert_eq "$(where k1)" n2
  assert_eq "$(where r1)" n2
}

starts_on() { nb "$1" monitor --format json "$2" | jq -s '[.[] | select(.type == "start")] | length'; }

# a bivyd stopped (SIGSTOP) past its lease: its guard killed the instance, another node runs
# it; woken up (SIGCONT), the stopped bivyd sees the exit first and must not start it again
test_cluster_ha_woken_bivyd_does_not_restart() {
  start_etcd3
  NODE_URL=$ETCD_URLS start_node n1
  nb n1 up f1 --rootfs "$ROOTFS" --restart always --memory 32M -- sleep 100000 >/dev/null
  wait_for ls_says n1 f1 "n1 running"
  NODE_URL=$ETCD_URLS start_node n2
  local before; before=$(starts_on n1 f1)
  start_sampler_for f1
  kill -STOP "$(cat "$T/n1.pid")"
  wait_for_s $((TTL_S * 4)) sh -c "[ \"\$(\"$BIVY\" --socket \"$T/n2/sock\" ls --format json | jq -r '.[] | select(.name == \"f1\") | .node + \" \" + .state')\" = 'n2 running' ]"
  kill -CONT "$(cat "$T/n1.pid")"
  sleep 2
  stop_sampler
  assert_eq "$(starts_on n1 f1)" "$before" "starts of f1 on n1 after it woke up"
  nb n1 monitor --format json f1 | jq -se 'any(.type == "held")' >/dev/null || fail "no held event on n1"
  assert_eq "$(where f1)" n2
}

# bivyd killed and started again at once (its lease still alive): the new bivyd re-adopts the
# instances and retires the old fence guard, whose deadlines would kill them
test_cluster_ha_restarted_bivyd_retires_old_guard() {
  start_etcd3
  NODE_URL=$ETCD_URLS start_node n1
  nb n1 up r1 --rootfs "$ROOTFS" --restart always --memory 32M --failover relaxed=3s -- sleep 100000 >/dev/null
  nb n1 up f1 --rootfs "$ROOTFS" --restart always --memory 32M -- sleep 100000 >/dev/null
  wait_for ls_says n1 r1 "n1 running n1"
  wait_for ls_says n1 f1 "n1 running"
  local r1 f1 guard
  r1=$(pid_of n1 r1) f1=$(pid_of n1 f1)
  guard=$(pgrep -P "$(cat "$T/n1.pid")" -x bivyd-fence)
  kill -9 "$(cat "$T/n1.pid")"
  NODE_URL=$ETCD_URLS start_node n1
  wait_for sh -c "! kill -0 $guard"
  grep -q "retired the fence guard $guard of a previous bivyd" "$T/n1.log" || fail "old guard not retired: $(grep cluster: "$T/n1.log" | tail -5)"
  sleep $((3 + TTL_S)) # past both old deadlines (relaxed: 3 s + TTL/3 after the last renewal)
  assert_eq "$(pid_of n1 r1)" "$r1" "r1 kept its process"
  assert_eq "$(pid_of n1 f1)" "$f1" "f1 kept its process"
}

test_cluster_ha_failover_bad_input() {
  expect_fail '--failover: unknown policy "sometimes" (fenced, keep or relaxed=DURATION)' \
    "$BIVY" --socket "$T/none.sock" up x --rootfs "$ROOTFS" --failover sometimes -- true
  expect_fail '--failover: relaxed=2h: out of range (1s to 1h; beyond, use keep)' \
    "$BIVY" --socket "$T/none.sock" up x --rootfs "$ROOTFS" --failover relaxed=2h -- true
  expect_fail '--failover: relaxed=soon: not a duration' \
    "$BIVY" --socket "$T/none.sock" up x --rootfs "$ROOTFS" --failover relaxed=soon -- true
}
