# bivy update: live limit changes, safe memory shrink, all-or-nothing validation.
TIERS="host v2"

cgcat() { cat "$(cgfile "$1" "$2")"; }
memlimit() { if is_v2; then cgcat "$1" memory.max; else cgcat "$1" memory.limit_in_bytes; fi; }
memusage() { if is_v2; then cgcat "$1" memory.current; else cgcat "$1" memory.usage_in_bytes; fi; }
# every limit file we may touch, for "nothing changed" checks
snapshot() {
  local f
  if is_v2; then
    for f in memory.max memory.low memory.swap.max cpu.max cpu.weight cpuset.cpus pids.max; do echo "$f=$(cgcat "$1" $f)"; done
  else
    for f in memory.limit_in_bytes memory.soft_limit_in_bytes memory.memsw.limit_in_bytes cpu.cfs_quota_us \
      cpu.cfs_period_us cpu.shares cpuset.cpus pids.max; do echo "$f=$(cgcat "$1" $f)"; done
  fi
}
# tail holds the memory once head has written it all and exited
big_enough() {
  local p
  [ "$(memusage "$1")" -ge $((78 * 1048576)) ] || return 1
  for p in $(bivy ps --format json "$1" | jq -r '.[]'); do [ "$(cat /proc/$p/comm 2>/dev/null)" != head ] || return 1; done
}

test_memory_grow_refused_shrink_and_force() {
  # tail holds ~80M of anonymous memory (no newline in its input) for as long as sleep runs
  mkbundle "$T/u1" sh -c '(head -c 80m /dev/zero; sleep 1000) | tail'
  jqi "$T/u1/config.json" '.linux.resources.memory = {"limit": 268435456}'
  bivy run -d -b "$T/u1" u1 >/dev/null
  wait_for big_enough u1
  pids_before=$(bivy ps --format json u1 | jq -c 'sort')
  out=$(bivy update --memory 128M u1)
  assert_eq "$(memlimit u1)" 134217728 "grown limit"
  assert_contains "$out" 134217728 "update prints the limit in force"
  expect_fail "stays above the new limit after 1s of reclaim; limits unchanged (use --force" \
    bivy update --memory 32M --reclaim-timeout 1s u1
  assert_eq "$(memlimit u1)" 134217728 "limit unchanged after refused shrink"
  assert_eq "$(bivy ps --format json u1 | jq -c 'sort')" "$pids_before" "every process alive"
  assert_eq "$(status_of u1)" running
  js=$(bivy update --force --memory 32M --format json u1)
  assert_eq "$(memlimit u1)" 33554432 "forced shrink applied"
  assert_eq "$(jq -r '.limits["memory.max"] // .limits["memory.limit_in_bytes"]' <<<"$js")" 33554432 "json output"
  assert_eq "$(jq -r .resources.memory.limit "$T/root/u1/state.json")" 33554432 "recorded in the state"
}

test_cpus_live() {
  mkbundle "$T/u2" sleep 1000
  bivy run -d -b "$T/u2" u2 >/dev/null
  bivy update --cpus 1.5 u2 >/dev/null
  if is_v2; then
    assert_eq "$(cgcat u2 cpu.max)" "150000 100000" cpu.max
  else
    assert_eq "$(cgcat u2 cpu.cfs_quota_us)" 150000 cfs_quota_us
    assert_eq "$(cgcat u2 cpu.cfs_period_us)" 100000 cfs_period_us
  fi
  bivy update --cpuset-cpus 0 --pids-limit 20 u2 >/dev/null
  assert_eq "$(cgcat u2 cpuset.cpus)" 0
  assert_eq "$(awk '/Cpus_allowed_list/ {print $2}' /proc/$(pid_of u2)/status)" 0 "running init follows the cpuset"
  assert_eq "$(cgcat u2 pids.max)" 20
  assert_eq "$(jq -c .resources.cpu "$T/root/u2/state.json" | jq -c '{quota, period, cpus}')" \
    '{"quota":150000,"period":100000,"cpus":"0"}' "state"
}

test_bad_updates_change_nothing() {
  mkbundle "$T/u3" sleep 1000
  jqi "$T/u3/config.json" '.linux.resources += {"memory": {"limit": 67108864}, "cpu": {"quota": 50000, "period": 100000}, "pids": {"limit": 32}}'
  bivy run -d -b "$T/u3" u3 >/dev/null
  before=$(snapshot u3)
  expect_fail "--cpuset-cpus 99: cpu 99 is not online" bivy update --pids-limit 10 --cpuset-cpus 99 u3
  expect_fail 'update: --memory: invalid size "-5"' bivy update --memory -5 u3
  echo '{"pids": {"limit": 10}, "unified": {"memory.bogus": "1"}}' >"$T/u.json"
  expect_fail '"memory.bogus"' bivy update -r "$T/u.json" u3
  echo '{"unified": {"../cgroup.procs": "1"}}' >"$T/esc.json"
  expect_fail 'not a cgroup file name' bivy update -r "$T/esc.json" u3
  echo '{"pids": {"limit": 10' >"$T/bad.json"
  expect_fail "invalid JSON" bivy update -r "$T/bad.json" u3
  expect_fail "does not exist" bivy update --memory 32M nosuch
  expect_fail "nothing to update" bivy update u3
  # a write the kernel refuses after another one succeeded: the first is rolled back
  if is_v2; then
    echo '{"pids": {"limit": 10}, "unified": {"cpu.weight": "0"}}' >"$T/rb.json"
    expect_fail 'cpu.weight' bivy update -r "$T/rb.json" u3
  else
    echo '{"pids": {"limit": 10}, "cpu": {"shares": 1024, "realtimeRuntime": 999999999}}' >"$T/rb.json"
    expect_fail 'realtimeRuntime' bivy update -r "$T/rb.json" u3
  fi
  assert_eq "$(snapshot u3)" "$before" "limits after failed updates"
  assert_eq "$(jq -r .resources.pids.limit "$T/root/u3/state.json")" 32 "state unchanged"
}

test_update_keeps_paused() {
  mkbundle "$T/u4" sleep 1000
  bivy run -d -b "$T/u4" u4 >/dev/null
  bivy pause u4
  bivy update --pids-limit 50 u4 >/dev/null
  assert_eq "$(cgcat u4 pids.max)" 50
  assert_eq "$(status_of u4)" paused
  bivy resume u4
}

test_update_joins_a_hierarchy_made_only_now() {
  # hybrid hosts: a container without cpu, cpuset or blkio settings has no cgroup in those
  # hierarchies; the first update that sets one makes it and moves every process in
  is_v2 && return 0
  mkbundle "$T/u5" sh -c 'sleep 1000 & sleep 1000'
  bivy run -d -b "$T/u5" u5 >/dev/null
  wait_for sh -c "[ \$(\"$BIVY\" --root \"$T/root\" ps --format json u5 | jq length) -ge 2 ]"
  for c in cpu cpuset blkio; do
    [ ! -e "/sys/fs/cgroup/$c$(cgpath u5)" ] || fail "$c cgroup made before it was needed"
  done
  # refused before anything is made: no cgroup appears for a bad value
  expect_fail "cpu 99 is not online" bivy update --cpuset-cpus 99 u5
  [ ! -e "/sys/fs/cgroup/cpuset$(cgpath u5)" ] || fail "cpuset cgroup made for a refused update"
  bivy pause u5
  bivy update --cpus 0.5 --cpuset-cpus 0 u5 >/dev/null
  assert_eq "$(status_of u5)" paused "a paused container stays paused"
  bivy resume u5
  assert_eq "$(cgcat u5 cpu.cfs_quota_us)" 50000 cfs_quota_us
  assert_eq "$(cgcat u5 cpuset.cpus)" 0
  for p in $(bivy ps --format json u5 | jq -r '.[]'); do
    for c in cpu cpuset; do
      grep -Eq "^[0-9]+:([a-z_,]*,)?$c(,[a-z_,]*)?:$(cgpath u5)\$" "/proc/$p/cgroup" ||
        fail "process $p not moved into the $c cgroup: $(cat /proc/$p/cgroup)"
    done
    assert_eq "$(awk '/Cpus_allowed_list/ {print $2}' /proc/$p/status)" 0 "affinity of $p"
  done
  jq -e '.cgroup.hierarchies | map(.controllers[]) | index("cpuset")' "$T/root/u5/state.json" >/dev/null ||
    fail "the joined cgroup is not recorded in the state"
  # a later exec lands in it too
  bivy exec -d u5 sleep 999
  wait_for sh -c "[ \$(\"$BIVY\" --root \"$T/root\" ps --format json u5 | jq length) -ge 3 ]"
  for p in $(bivy ps --format json u5 | jq -r '.[]'); do
    grep -q ":cpu:$(cgpath u5)\$" "/proc/$p/cgroup" || fail "exec'd process $p outside the cpu cgroup"
  done
  bivy delete -f u5
  for c in cpu cpuset; do [ ! -e "/sys/fs/cgroup/$c$(cgpath u5)" ] || fail "$c cgroup left behind"; done
}
