# The container lifecycle: create/start/state/kill/delete/run/list/ps, status transitions,
# exit codes, bad input, failures that must leave nothing behind, parallel lifecycles.
TIERS="host v2"

# cgroup directories of container ID (any hierarchy); empty when none is left
cg_dirs() { ls -d /sys/fs/cgroup/*/"$CG_PARENT/$1" /sys/fs/cgroup/"$CG_PARENT/$1" 2>/dev/null || true; }

# predicates for wait_for (evaluated on every try)
status_is() { [ "$(bivy state "$1" 2>/dev/null | jq -r .status)" = "$2" ]; }
nprocs_is() { [ "$(bivy ps --format json "$1" 2>/dev/null | jq length)" = "$2" ]; }
proc_gone() { [ ! -e "/proc/$1/stat" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }

# assert nothing of container ID is left: no state dir, no cgroup
assert_no_trace() {
  [ ! -e "$T/root/$1" ] || fail "state dir of $1 left behind: $(ls -la "$T/root/$1")"
  [ -z "$(cg_dirs "$1")" ] || fail "cgroup of $1 left behind: $(cg_dirs "$1")"
  [ -z "$(ls -d "$T/root"/\#new-* 2>/dev/null)" ] || fail "temporary state dir left behind"
}

test_lifecycle_status_transitions() {
  mkbundle "$T/c1" sleep 1000
  bivy create -b "$T/c1" --pid-file "$T/pid" c1
  assert_eq "$(status_of c1)" created
  pid=$(pid_of c1)
  assert_eq "$(cat "$T/pid")" "$pid" "pid-file"
  [ -d "/proc/$pid" ] || fail "init $pid not alive"
  [ -n "$(cg_dirs c1)" ] || fail "no cgroup for c1"
  grep -qx "$pid" "$(cg_dirs c1 | head -1)/cgroup.procs" || fail "init not in its cgroup"
  st=$(bivy state c1)
  assert_eq "$(jq -r .id <<<"$st")" c1
  assert_eq "$(jq -r .bundle <<<"$st")" "$T/c1"
  assert_eq "$(jq -r .ociVersion <<<"$st")" 1.2.0
  jq -e '.annotations | type == "object"' <<<"$st" >/dev/null || fail "no annotations object"
  # the program has not run yet: the init is still bivy's clone, not sleep
  [ "$(cat /proc/$pid/comm)" != sleep ] || fail "program ran before start"
  bivy start c1
  assert_eq "$(status_of c1)" running
  assert_eq "$(cat /proc/$pid/comm)" sleep
  expect_fail "is running, not created" bivy start c1
  expect_fail "stop it first or use --force" bivy delete c1
  bivy kill c1 KILL
  wait_for status_is c1 stopped
  assert_eq "$(bivy state c1 | jq .pid)" 0
  expect_fail "not running" bivy kill c1 TERM
  bivy delete c1
  expect_fail "container c1 does not exist" bivy state c1
  assert_no_trace c1
}

test_run_exit_codes() {
  mkbundle "$T/e0" true
  bivy run -b "$T/e0" e0
  mkbundle "$T/e3" sh -c 'exit 3'
  rc=0; bivy run -b "$T/e3" e3 || rc=$?
  assert_eq "$rc" 3 "exit status"
  # (the init cannot SIGKILL itself inside its pid namespace: kill it from outside)
  mkbundle "$T/e9" sleep 1000
  bivy run -b "$T/e9" e9 &
  runpid=$!
  wait_for status_is e9 running
  bivy kill e9 KILL
  rc=0; wait $runpid || rc=$?
  assert_eq "$rc" 137 "128+SIGKILL"
  # foreground run deletes the container afterwards
  assert_no_trace e0
  assert_no_trace e3
  assert_no_trace e9
  assert_eq "$(bivy list -q)" ""
}

test_run_output_and_hostname() {
  mkbundle "$T/h1" sh -c 'echo out-$(hostname); echo err >&2'
  jqi "$T/h1/config.json" '.hostname = "lifecycle-host"'
  out=$(bivy run -b "$T/h1" h1 2>"$T/err")
  assert_eq "$out" "out-lifecycle-host"
  assert_eq "$(cat "$T/err")" "err"
}

test_run_forwards_signals() {
  mkbundle "$T/f1" sh -c 'trap "exit 42" USR1; echo ready > /dev/shm/ready; while :; do sleep 0.1; done'
  "$BIVY" --root "$T/root" run -b "$T/f1" f1 &   # not the bivy() wrapper: $! must be bivy
  runpid=$!
  wait_for status_is f1 running
  pid=$(pid_of f1)
  wait_for test -e "/proc/$pid/root/dev/shm/ready"
  kill -USR1 $runpid
  rc=0; wait $runpid || rc=$?
  assert_eq "$rc" 42 "SIGUSR1 forwarded to the container"
  assert_no_trace f1
}

test_kill_signal_names_and_numbers() {
  mkbundle "$T/k1" sh -c 'trap "echo TERM >> /dev/shm/log" TERM; trap "echo USR2 >> /dev/shm/log" USR2; trap "echo HUP >> /dev/shm/log" HUP; echo ready > /dev/shm/log; while :; do sleep 0.1; done'
  bivy run -d -b "$T/k1" k1
  pid=$(pid_of k1)
  log=/proc/$pid/root/dev/shm/log
  wait_for grep -q ready "$log"
  bivy kill k1                # default TERM
  wait_for grep -q TERM "$log"
  bivy kill k1 SIGUSR2
  wait_for grep -q USR2 "$log"
  bivy kill k1 1              # HUP by number
  wait_for grep -q HUP "$log"
  expect_fail 'unknown signal "FOO"' bivy kill k1 FOO
  expect_fail 'unknown signal "99"' bivy kill k1 99
  bivy kill k1 kill
  wait_for status_is k1 stopped
  bivy delete k1
  assert_no_trace k1
}

test_kill_all_and_created() {
  mkbundle "$T/a1" sh -c 'sleep 1000 & sleep 1000 & wait'
  bivy run -d -b "$T/a1" a1
  wait_for nprocs_is a1 3
  pids=$(bivy ps --format json a1 | jq -r '.[]')
  bivy kill --all a1 KILL
  for p in $pids; do wait_for proc_gone "$p"; done
  bivy delete a1
  # a created container may be killed (OCI): it becomes stopped
  mkbundle "$T/a2" sleep 1000
  bivy create -b "$T/a2" a2
  bivy kill a2 KILL
  wait_for status_is a2 stopped
  bivy delete a2
  assert_no_trace a2
}

test_delete_force() {
  mkbundle "$T/d1" sleep 1000
  bivy run -d -b "$T/d1" d1
  pid=$(pid_of d1)
  expect_fail "use --force" bivy delete d1
  assert_eq "$(status_of d1)" running
  bivy delete --force d1
  wait_for proc_gone "$pid"
  assert_no_trace d1
  # a created container too
  bivy create -b "$T/d1" d1
  bivy delete -f d1
  assert_no_trace d1
}

test_failed_create_leaves_nothing() {
  mkbundle "$T/m1" /bin/no-such-binary
  expect_fail 'no-such-binary' bivy create -b "$T/m1" m1
  assert_no_trace m1
  mkbundle "$T/m2" no-such-cmd
  expect_fail 'executable file not found in $PATH' bivy run -b "$T/m2" m2
  assert_no_trace m2
  mkbundle "$T/m3"
  echo '{"ociVersion": "1.2.0", "process": ' >"$T/m3/config.json"
  expect_fail 'config.json' bivy create -b "$T/m3" m3
  assert_no_trace m3
  mkbundle "$T/m4"
  jqi "$T/m4/config.json" --arg r "$T/nonexistent-rootfs" '.root.path = $r'
  expect_fail 'nonexistent-rootfs' bivy create -b "$T/m4" m4
  assert_no_trace m4
  # failing after the cgroup exists (a mount that cannot be done, inside the init)
  mkbundle "$T/m5"
  jqi "$T/m5/config.json" '.mounts += [{"destination": "/mnt", "type": "bind", "source": "/nonexistent-src", "options": ["bind"]}]'
  expect_fail 'nonexistent-src' bivy create -b "$T/m5" m5
  assert_no_trace m5
  expect_fail "--bundle" bivy create -b "$T/nope" m6
  assert_no_trace m6
  assert_eq "$(bivy list -q)" ""
}

test_bad_ids_and_usage() {
  mkbundle "$T/b1" sleep 1000
  bivy create -b "$T/b1" b1
  expect_fail "container b1 already exists" bivy create -b "$T/b1" b1
  assert_eq "$(status_of b1)" created "the existing container is untouched"
  expect_fail 'invalid container ID "a/b"' bivy create -b "$T/b1" a/b
  expect_fail 'invalid container ID ".."' bivy create -b "$T/b1" ..
  expect_fail 'invalid container ID "../x"' bivy state ../x
  expect_fail "container nope does not exist" bivy start nope
  expect_fail "container nope does not exist" bivy kill nope
  expect_fail "container nope does not exist" bivy delete nope
  expect_fail "expected exactly one container ID" bivy create -b "$T/b1"
  expect_fail "--preserve-fds" bivy create --preserve-fds -1 -b "$T/b1" b2
  expect_fail "--format" bivy list --format yaml
  bivy delete -f b1
}

test_create_without_process() {
  mkbundle "$T/n1"
  jqi "$T/n1/config.json" 'del(.process)'
  bivy create -b "$T/n1" n1
  assert_eq "$(status_of n1)" created
  expect_fail "no process" bivy start n1
  bivy delete -f n1
  assert_no_trace n1
}

test_list_and_ps_json() {
  mkbundle "$T/l1" sh -c 'sleep 1000 & exec sleep 999'
  mkbundle "$T/l2" sleep 1000
  bivy run -d -b "$T/l1" l1
  bivy create -b "$T/l2" l2
  js=$(bivy list --format json)
  assert_eq "$(jq -r '[.[].id] | join(",")' <<<"$js")" "l1,l2"
  assert_eq "$(jq -r '.[] | select(.id == "l1") | .status' <<<"$js")" running
  assert_eq "$(jq -r '.[] | select(.id == "l2") | .status' <<<"$js")" created
  assert_eq "$(jq -r '.[] | select(.id == "l1") | .pid' <<<"$js")" "$(pid_of l1)"
  assert_eq "$(bivy list -q | tr '\n' ' ')" "l1 l2 "
  tbl=$(bivy list)
  assert_contains "$tbl" "ID"
  assert_contains "$(grep '^l1 ' <<<"$tbl")" running
  wait_for nprocs_is l1 2
  ps=$(bivy ps --format json l1)
  jq -e --argjson p "$(pid_of l1)" 'index($p) != null' <<<"$ps" >/dev/null || fail "init pid not in ps: $ps"
  tbl=$(bivy ps l1)
  assert_contains "$(head -1 <<<"$tbl")" PID
  assert_contains "$tbl" "sleep 999"
  assert_contains "$tbl" "sleep 1000"
}

test_parallel_lifecycles() {
  local n=30
  in_vm && n=8
  # sanitizer builds pay ~0.3 s of CPU per bivy start/exit: fewer, still in parallel
  grep -qa __asan_init "$BIVY" && n=12
  for i in $(seq 1 $n); do mkbundle "$T/p$i" sleep 1000; done
  for i in $(seq 1 $n); do
    (
      set -e
      id=p$i
      bivy create -b "$T/p$i" --pid-file "$T/pid.$i" $id
      bivy start $id
      [ "$(bivy state $id | jq -r .status)" = running ]
      bivy kill $id KILL
      bivy delete --force $id   # (does not wait for "stopped" by polling: cheap under ASan)
      echo ok >"$T/ok.$i"
    ) >"$T/log.$i" 2>&1 &
  done
  wait
  for i in $(seq 1 $n); do
    [ -e "$T/ok.$i" ] || fail "lifecycle $i failed: $(cat "$T/log.$i")"
  done
  assert_eq "$(bivy list -q)" ""
  for i in $(seq 1 $n); do assert_no_trace p$i; done
}

test_hooks_order_and_state() {
  mkbundle "$T/hk" sleep 1000
  hook() { # KIND: a runtime-namespace hook that logs its kind and saves its stdin
    jq -n --arg k "$1" --arg t "$T" '{path: "/bin/sh", args: ["sh", "-c", "echo \($k) >> \($t)/hooks.log; cat > \($t)/\($k).json"]}'
  }
  jqi "$T/hk/config.json" --argjson cr "$(hook createRuntime)" --argjson ps "$(hook poststart)" \
    --argjson pst "$(hook poststop)" '.hooks = {createRuntime: [$cr], poststart: [$ps], poststop: [$pst]}'
  bivy create -b "$T/hk" hk
  assert_eq "$(cat "$T/hooks.log")" createRuntime
  assert_eq "$(jq -r .id "$T/createRuntime.json")" hk
  assert_eq "$(jq -r .pid "$T/createRuntime.json")" "$(pid_of hk)"
  assert_eq "$(jq -r .bundle "$T/createRuntime.json")" "$T/hk"
  bivy start hk
  assert_eq "$(cat "$T/hooks.log" | tr '\n' ' ')" "createRuntime poststart "
  assert_eq "$(jq -r .status "$T/poststart.json")" running
  bivy delete -f hk
  assert_eq "$(cat "$T/hooks.log" | tr '\n' ' ')" "createRuntime poststart poststop "
  assert_eq "$(jq -r .status "$T/poststop.json")" stopped
  # a failing createRuntime hook fails create and leaves nothing
  mkbundle "$T/hf" sleep 1000
  jqi "$T/hf/config.json" '.hooks = {createRuntime: [{path: "/bin/sh", args: ["sh", "-c", "exit 3"]}]}'
  expect_fail "createRuntime" bivy create -b "$T/hf" hf
  assert_no_trace hf
}

# The program starts with no blocked or ignored signals, whatever the caller had: a caller
# ignoring TERM (nohup, a supervisor) must not make its containers deaf to `kill`.
test_signals_reset_for_the_program() {
  # TERM, HUP, INT and glibc's reserved 32/33 ignored, every signal blocked, by the caller
  mkbundle "$T/sg" grep -E 'SigIgn|SigBlk' /proc/self/status
  out=$("$HELPERS/sigign" -b 15 1 2 32 33 -- "$BIVY" --root "$T/root" run -b "$T/sg" sg)
  assert_contains "$out" "SigBlk:	0000000000000000"
  assert_contains "$out" "SigIgn:	0000000000000000"
  mkbundle "$T/sg2" sleep 1000
  "$HELPERS/sigign" 15 32 33 -- "$BIVY" --root "$T/root" run -d -b "$T/sg2" sg2 >/dev/null
  pid=$(pid_of sg2)
  assert_eq "$(awk '/^SigIgn/ {print $2}' /proc/$pid/status)" 0000000000000000 "init ignores signals"
  out=$("$HELPERS/sigign" -b 15 32 33 -- "$BIVY" --root "$T/root" exec sg2 grep -E 'SigIgn|SigBlk' /proc/self/status)
  assert_contains "$out" "SigBlk:	0000000000000000" "exec'd process"
  assert_contains "$out" "SigIgn:	0000000000000000" "exec'd process"
}
