# bivyd autoscaling: limits grow from measured pressure (memory usage threshold / memory.high,
# PSI) and shrink back after a quiet window, within the policy's bounds and the host budget.
# The memory workload fills a tmpfs inside the container (tmpfs pages are charged to the
# container's memory cgroup and cannot be reclaimed without swap): 40 MB, then 20 MB steps
# to 300 MB.
TIERS="host v2"

. "$(dirname "${BASH_SOURCE[0]}")/lib-bivyd.sh"

# grower NAME: a bundle whose process fills /big (tmpfs) from 40 MB to 300 MB, then exits 0
grower() {
  # (one line: mkbundle takes one argument per line)
  mkbundle "$T/$1" sh -c 'dd if=/dev/zero of=/big/base bs=1M count=40 2>/dev/null; i=0; while [ $i -lt 13 ]; do i=$((i+1)); dd if=/dev/zero of=/big/f$i bs=1M count=20 2>/dev/null || exit 3; sleep 0.3; done; echo filled'
  jqi "$T/$1/config.json" '.mounts += [{"destination": "/big", "type": "tmpfs", "source": "tmpfs", "options": ["size=400m"]}]'
}

# events NAME TYPE: the instance's events of one type, one JSON object per line
events() { bv monitor --format json "$1" | jq -c --arg t "$2" 'select(.type == $t)'; }

test_static_limit_is_oom_killed() {
  start_bivyd
  grower g1
  bv up g1 --bundle "$T/g1" --memory 100M >/dev/null
  wait_for_s 30 state_is g1 exited
  assert_eq "$(field g1 .last_exit)" "oom-killed" "a 100M static limit"
  [ "$(field g1 .oom_kills)" -ge 1 ] || fail "no OOM kill counted"
}

test_autoscale_grows_ahead_of_oom() {
  start_bivyd
  grower g2
  bv up g2 --bundle "$T/g2" --autoscale memory=64M:512M,quiet=60s >/dev/null
  assert_eq "$(field g2 .autoscale_text)" "memory=64M:512M,quiet=60s"
  wait_for_s 60 state_is g2 exited
  assert_eq "$(field g2 .last_exit)" "exited(0)" "the workload finished"
  assert_eq "$(field g2 .oom_kills)" "0" "no OOM kill"
  bv logs g2 | grep -q filled || fail "workload output missing: $(bv logs g2)"
  ev=$(events g2 autoscale)
  n=$(echo "$ev" | grep -c memory)
  [ "$n" -ge 3 ] || fail "expected several grow steps, got: $ev"
  assert_eq "$(echo "$ev" | awk 'NR == 1' | jq .before)" "67108864" "starts at MIN"
  # every step grows, within bounds, and lands in the desired limits
  echo "$ev" | jq -se 'any(.after <= .before or .after > 536870912)' >/dev/null && fail "bad step: $ev"
  last=$(echo "$ev" | tail -1 | jq .after)
  assert_eq "$(bv inspect g2 | jq .spec.limits.memory)" "$last" "desired limit = last step"
  [ "$last" -ge $((300 * 1024 * 1024)) ] || fail "final limit $last below the 300M the workload used"
}

# the limits in force in an instance's cgroup: CPU quota (us per 100 ms period), memory bytes
cgquota() { if is_v2; then cut -d' ' -f1 "$(cgfile "$1" cpu.max)"; else cat "/sys/fs/cgroup/cpu$(cgpath "$1")/cpu.cfs_quota_us"; fi; }
cgmem() { if is_v2; then cat "$(cgfile "$1" memory.max)"; else cat "/sys/fs/cgroup/memory$(cgpath "$1")/memory.limit_in_bytes"; fi; }

# limit_is NAME JQ-CONDITION: the instance's desired limits satisfy a jq condition on .limits
limit_is() { bv ls --format json | jq -e --arg n "$1" ".[] | select(.name == \$n) | .limits | $2" >/dev/null; }

test_cpu_grows_when_throttled_and_shrinks_when_quiet() {
  start_bivyd
  # busy for 8 s, then idle
  bv up c1 --rootfs "$ROOTFS" --autoscale cpus=0.2:2,quiet=3s -- sh -c 'timeout 8 sh -c "while :; do :; done"; exec sleep 1000' >/dev/null
  wait_for_s 8 limit_is c1 '.cpus > 0.2'
  ev=$(events c1 autoscale | awk 'NR == 1')
  assert_eq "$(echo "$ev" | jq -r .resource)" "cpus"
  assert_eq "$(echo "$ev" | jq -r .before)" "0.2" "starts at MIN"
  assert_contains "$(echo "$ev" | jq -r .reason)" "cpu"
  # the quota really changed in the cgroup (v2 cpu.max, v1 cpu.cfs_quota_us)
  q=$(cgquota c1)
  [ "$q" -gt 20000 ] || fail "cgroup quota still $q"
  # idle after the busy loop: back to MIN after the quiet window
  wait_for_s 25 limit_is c1 '.cpus == 0.2'
  assert_contains "$(events c1 autoscale | tail -1 | jq -r .reason)" "quiet window"
  assert_eq "$(cgquota c1)" "20000" "quota back to 0.2 CPU"
}

test_budget_caps_the_sum_and_refusals_are_events() {
  start_bivyd --budget-memory 256M
  grower b1
  grower b2
  bv up b1 --bundle "$T/b1" --autoscale memory=64M:512M,quiet=60s >/dev/null
  bv up b2 --bundle "$T/b2" --autoscale memory=64M:512M,quiet=60s >/dev/null
  # sample the sum of the desired limits every 100 ms while they grow
  local i sum max=0
  # (until both have ended: one finishes, the other cannot grow past the budget)
  local ls running
  for ((i = 0; i < 150; i++)); do
    ls=$(bv ls --format json)
    sum=$(jq '[.[] | select(.state == "running" or .state == "starting") | .limits.memory] | add // 0' <<<"$ls")
    [ "$sum" -le $((256 * 1024 * 1024)) ] || fail "limits sum $sum above the 256M budget"
    [ "$sum" -gt "$max" ] && max=$sum
    running=$(jq '[.[] | select(.state == "running" or .state == "starting")] | length' <<<"$ls")
    [ "$running" -gt 0 ] || break
    sleep 0.1
  done
  [ "$max" -gt $((128 * 1024 * 1024)) ] || fail "the instances never grew (max sum $max)"
  ev=$( (events b1 autoscale-refused; events b2 autoscale-refused) | awk 'NR == 1')
  [ -n "$ev" ] || fail "no autoscale-refused event"
  assert_eq "$(echo "$ev" | jq -r .reason)" "host budget"
  assert_eq "$(echo "$ev" | jq -r .budget)" "268435456"
  # a static limit that does not fit is refused at up, nothing left behind
  expect_fail "does not fit the host budget (--budget-memory 256M" bv up b3 --rootfs "$ROOTFS" --memory 300M -- true
  expect_fail "needs a memory limit" bv up b4 --rootfs "$ROOTFS" -- true
  [ -z "$(field b3 .name)" ] || fail "b3 left in the table"
}

test_policy_set_changed_and_removed_live() {
  start_bivyd
  bv up p1 --rootfs "$ROOTFS" --memory 1G -- sleep 1000 >/dev/null
  assert_eq "$(field p1 .autoscale_text)" "null"
  out=$(bv autoscale p1 memory=64M:512M,quiet=5s)
  assert_eq "$out" "p1: autoscale memory=64M:512M,quiet=5s"
  # the 1G limit moved to the nearest bound, live and in the desired state
  assert_eq "$(field p1 .limits.memory)" "536870912"
  assert_eq "$(cgmem p1)" "536870912" "cgroup memory limit"
  assert_eq "$(bv inspect p1 | jq -c .spec.autoscale)" '{"memory":{"min":67108864,"max":536870912},"quiet_ms":5000}'
  bv autoscale p1 --off >/dev/null
  assert_eq "$(field p1 .autoscale_text)" "null"
  assert_eq "$(field p1 .limits.memory)" "536870912" "limits stay where they are"
  # the policy survives a bivyd restart
  bv autoscale p1 memory=64M:1G >/dev/null
  kill9_bivyd
  start_bivyd
  assert_eq "$(field p1 .autoscale_text)" "memory=64M:1G,quiet=30s"
}

test_bad_policies_are_refused() {
  start_bivyd
  expect_fail "up: --autoscale: memory: min 512M is above max 64M" bv up x --rootfs "$ROOTFS" --autoscale memory=512M:64M -- true
  expect_fail 'unknown resource "disk" (memory, cpus, quiet)' bv up x --rootfs "$ROOTFS" --autoscale disk=1:2 -- true
  expect_fail 'memory: min "-5M" is not a size' bv up x --rootfs "$ROOTFS" --autoscale memory=-5M:1G -- true
  expect_fail "cpus: bounds must be within 0.01-4096" bv up x --rootfs "$ROOTFS" --autoscale cpus=-1:2 -- true
  expect_fail 'cpus: min 3 is above max 2' bv up x --rootfs "$ROOTFS" --autoscale cpus=3:2 -- true
  expect_fail 'memory: "64M" is not MIN:MAX' bv up x --rootfs "$ROOTFS" --autoscale memory=64M -- true
  expect_fail "outside the autoscale range" bv up x --rootfs "$ROOTFS" --memory 1G --autoscale memory=64M:512M -- true
  expect_fail "autoscale: no instance named \"nosuch\"" bv autoscale nosuch memory=64M:1G
  expect_fail "expected NAME POLICY, or NAME --off" bv autoscale x
  expect_fail "--budget-memory: invalid size" "$BIVYD" --budget-memory lots --state-dir "$T/s2" --socket "$T/s2.sock"
  [ -z "$(field x .name)" ] || fail "a refused up left an instance"
}

test_cpu_budget() {
  start_bivyd --budget-cpus 1
  bv up k1 --rootfs "$ROOTFS" --cpus 0.8 -- sleep 1000 >/dev/null
  expect_fail "cpus 0.5 does not fit the host budget (--budget-cpus 1, 0.8 held by other instances)" \
    bv up k2 --rootfs "$ROOTFS" --cpus 0.5 -- sleep 1000
  expect_fail "does not fit the host budget" bv resize k1 --cpus 1.5
  assert_eq "$(field k1 .limits.cpus)" "0.8" "a refused resize changes nothing"
  # a stopped instance holds nothing: its budget is free for another
  bv down k1 --timeout 200ms >/dev/null
  bv up k2 --rootfs "$ROOTFS" --cpus 0.5 -- sleep 1000 >/dev/null
  expect_fail "does not fit the host budget" bv up k1
}
