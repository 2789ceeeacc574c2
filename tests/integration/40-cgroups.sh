# cgroups: limits from linux.resources land in the cgroup files and are enforced; pause/resume;
# stats; devices; failures leave nothing behind.
TIERS="host v2"

cgcat() { cat "$(cgfile "$1" "$2")"; }

# a bundle with a host dir bound read-write at /ctl for signalling
ctlbundle() { # DIR CMD...
  local dir=$1; shift
  mkbundle "$dir" "$@"
  mkdir -p "$dir/ctl"
  jqi "$dir/config.json" --arg ctl "$dir/ctl" \
    '.mounts += [{"destination": "/ctl", "type": "bind", "source": $ctl, "options": ["rbind", "rw"]}]'
}

limits='{"memory": {"limit": 67108864}, "cpu": {"quota": 50000, "period": 100000, "cpus": "0"}, "pids": {"limit": 32}}'

test_limits_applied_and_process_inside() {
  mkbundle "$T/c1" sleep 1000
  jqi "$T/c1/config.json" --argjson r "$limits" '.linux.resources += $r'
  bivy run -d -b "$T/c1" c1 >/dev/null
  if is_v2; then
    assert_eq "$(cgcat c1 memory.max)" 67108864 memory.max
    assert_eq "$(cgcat c1 cpu.max)" "50000 100000" cpu.max
  else
    assert_eq "$(cgcat c1 memory.limit_in_bytes)" 67108864 memory.limit_in_bytes
    assert_eq "$(cgcat c1 cpu.cfs_quota_us)" 50000 cfs_quota_us
    assert_eq "$(cgcat c1 cpu.cfs_period_us)" 100000 cfs_period_us
  fi
  assert_eq "$(cgcat c1 pids.max)" 32 pids.max
  assert_eq "$(cgcat c1 cpuset.cpus)" 0 cpuset.cpus
  pid=$(pid_of c1)
  grep -q ":$(cgpath c1)\$" "/proc/$pid/cgroup" || fail "init not in its cgroup: $(cat /proc/$pid/cgroup)"
  assert_eq "$(awk '/Cpus_allowed_list/ {print $2}' /proc/$pid/status)" 0 "affinity of init"
  # every hierarchy it needs, not just one; on hybrid hosts the ones it does not need are
  # left alone (the cgroup2 tree lists, kills and freezes it, and has its cpu usage)
  if ! is_v2; then
    for c in memory cpu cpuset pids devices; do
      in_hier "$pid" "$c" c1 || fail "init not in the $c hierarchy: $(cat /proc/$pid/cgroup)"
    done
    grep -qx "0::$(cgpath c1)" "/proc/$pid/cgroup" || fail "init not in the cgroup2 tree: $(cat /proc/$pid/cgroup)"
    for c in freezer blkio cpuacct; do
      ! in_hier "$pid" "$c" c1 || fail "init joined the $c hierarchy it does not need"
      [ ! -e "/sys/fs/cgroup/$c$(cgpath c1)" ] || fail "a $c cgroup was made for nothing"
    done
  fi
}
# in_hier PID CONTROLLER ID: PID is in ID's cgroup in the v1 hierarchy of CONTROLLER
in_hier() { grep -Eq "^[0-9]+:([a-z_,]*,)?$2(,[a-z_,]*)?:$(cgpath "$3")\$" "/proc/$1/cgroup"; }

test_fork_loop_stops_at_pids_limit() {
  # the shell forks sleepers until the kernel refuses; it keeps the init alive either way
  ctlbundle "$T/c2" sh -c 'i=0; while [ $i -lt 64 ]; do (sleep 1000 &) 2>>/ctl/err; i=$((i+1)); done; echo done >/ctl/done; sleep 1000'
  jqi "$T/c2/config.json" '.linux.resources.pids = {"limit": 32}'
  bivy run -d -b "$T/c2" c2 >/dev/null
  wait_for test -e "$T/c2/ctl/done"
  # init + sleepers fill the limit; the subshell that would fork one more cannot
  n=$(cgcat c2 pids.current)
  [ "$n" -ge 31 ] && [ "$n" -le 32 ] || fail "pids.current $n (limit 32)"
  [ "$(awk '$1 == "max" {print $2}' "$(cgfile c2 pids.events)")" -ge 1 ] || fail "pids.events: $(cgcat c2 pids.events)"
  grep -q "fork" "$T/c2/ctl/err" || fail "no fork failure reported: $(cat "$T/c2/ctl/err")"
}

test_oom_kill_inside_limit() {
  ctlbundle "$T/c3" sh -c 'head -c 100m /dev/zero | tail >/dev/null; echo "rc=$?" >/ctl/rc; sleep 1000'
  jqi "$T/c3/config.json" '.linux.resources.memory = {"limit": 67108864}'
  bivy run -d -b "$T/c3" c3 >/dev/null
  wait_for test -s "$T/c3/ctl/rc"
  assert_eq "$(cat "$T/c3/ctl/rc")" "rc=137" "tail OOM-killed (SIGKILL)"
  if is_v2; then
    n=$(awk '$1 == "oom_kill" {print $2}' "$(cgfile c3 memory.events)")
  else
    n=$(awk '$1 == "oom_kill" {print $2}' "$(cgfile c3 memory.oom_control)")
  fi
  [ "$n" -ge 1 ] || fail "oom_kill counter is $n"
  assert_eq "$(status_of c3)" running "init survives"
}

test_delete_removes_every_cgroup_dir() {
  mkbundle "$T/c4" sleep 1000
  jqi "$T/c4/config.json" --argjson r "$limits" '.linux.resources += $r'
  bivy run -d -b "$T/c4" c4 >/dev/null
  dirs=$(ls -d /sys/fs/cgroup$(cgpath c4) /sys/fs/cgroup/*$(cgpath c4) 2>/dev/null || true)
  [ -n "$dirs" ] || fail "no cgroup dirs"
  pid=$(pid_of c4)
  bivy delete -f c4
  for d in $dirs; do [ ! -e "$d" ] || fail "$d left behind"; done
  [ ! -e "/proc/$pid" ] || [ "$(awk '{print $3}' /proc/$pid/stat)" = Z ] || fail "init still alive"
}

test_pause_resume() {
  mkbundle "$T/c5" sleep 1000
  bivy run -d -b "$T/c5" c5 >/dev/null
  expect_fail "is not paused" bivy resume c5
  bivy pause c5
  assert_eq "$(status_of c5)" paused
  # v2, and hybrid hosts too: the cgroup2 tree's freezer (no v1 freezer cgroup is made)
  assert_eq "$(cgcat c5 cgroup.freeze)" 1 cgroup.freeze
  grep -qx "frozen 1" "$(cgfile c5 cgroup.events)" || fail "not frozen: $(cgcat c5 cgroup.events)"
  is_v2 || [ ! -e "/sys/fs/cgroup/freezer$(cgpath c5)" ] || fail "a v1 freezer cgroup was made"
  expect_fail "is not running" bivy pause c5
  bivy resume c5
  assert_eq "$(status_of c5)" running
  assert_eq "$(cgcat c5 cgroup.freeze)" 0
  expect_fail "does not exist" bivy pause nosuch
}

test_stats() {
  mkbundle "$T/c6" sleep 1000
  jqi "$T/c6/config.json" --argjson r "$limits" '.linux.resources += $r'
  bivy run -d -b "$T/c6" c6 >/dev/null
  js=$(bivy stats --format json c6)
  assert_eq "$(jq -r .id <<<"$js")" c6
  assert_eq "$(jq -r .data.memory.usage.limit <<<"$js")" 67108864 "memory limit"
  assert_eq "$(jq -r .data.pids.limit <<<"$js")" 32 "pids limit"
  [ "$(jq -r .data.pids.current <<<"$js")" -ge 1 ] || fail "pids.current: $js"
  [ "$(jq -r .data.memory.usage.usage <<<"$js")" -gt 0 ] || fail "memory usage: $js"
  [ "$(jq -r '.data.cpu.usage.total' <<<"$js")" -gt 0 ] || fail "cpu usage: $js"
  jq -e '.data.psi.memory.some.avg10 != null' <<<"$js" >/dev/null || fail "no PSI: $js"
  out=$(bivy stats c6)
  assert_contains "$out" "64.0M"
  # no cpu settings (hybrid hosts: no v1 cpu or cpuacct cgroup): usage from the cgroup2 tree
  mkbundle "$T/c7" sh -c 'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 1000'
  bivy run -d -b "$T/c7" c7 >/dev/null
  wait_for sh -c "[ \$(\"$BIVY\" --root \"$T/root\" stats --format json c7 | jq .data.cpu.usage.total) -gt 10000000 ]"
  expect_fail "does not exist" bivy stats nosuch
}

test_unapplicable_setting_fails_and_leaves_nothing() {
  mkbundle "$T/c7" sleep 1000
  jqi "$T/c7/config.json" '.linux.resources.unified = {"memory.bogus": "1"}'
  expect_fail 'linux.resources.unified."memory.bogus"' bivy run -d -b "$T/c7" c7
  assert_eq "$(bivy list -q)" "" "no container left"
  left=$(ls -d /sys/fs/cgroup$(cgpath c7) /sys/fs/cgroup/*$(cgpath c7) 2>/dev/null || true)
  assert_eq "$left" "" "no cgroup left"
  mkbundle "$T/c8" sleep 1000
  jqi "$T/c8/config.json" '.linux.cgroupsPath = "/../escape"'
  expect_fail 'linux.cgroupsPath' bivy run -d -b "$T/c8" c8
}

test_devices_default_deny_still_allows_basics() {
  ctlbundle "$T/c9" sh -c 'echo x >/dev/null && head -c 1 /dev/zero >/dev/null && echo ok >/ctl/basic; (exec 3<>/dev/fuse) 2>/ctl/fuse && echo opened >>/ctl/fuse; sleep 1000'
  jqi "$T/c9/config.json" '.linux.devices = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438}]'
  bivy run -d -b "$T/c9" c9 >/dev/null
  wait_for test -s "$T/c9/ctl/fuse"
  assert_eq "$(cat "$T/c9/ctl/basic")" ok "null/zero usable"
  assert_contains "$(cat "$T/c9/ctl/fuse")" "Operation not permitted" "fuse denied by the device rules"
  # an explicit allow rule opens it
  ctlbundle "$T/c10" sh -c '(exec 3<>/dev/fuse) 2>/ctl/fuse && echo opened >>/ctl/fuse; sleep 1000'
  jqi "$T/c10/config.json" '.linux.devices = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438}]
    | .linux.resources.devices += [{"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}]'
  bivy run -d -b "$T/c10" c10 >/dev/null
  wait_for test -s "$T/c10/ctl/fuse"
  assert_not_contains "$(cat "$T/c10/ctl/fuse")" "Operation not permitted" "fuse allowed"
}
