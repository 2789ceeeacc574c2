# bivy exec: a process in a running container's namespaces, cgroup and root, with the
# container's process settings as defaults.
TIERS="host v2"

start_ctr() { # ID: a running container with a sleeping init
  mkbundle "$T/$1" sleep 1000
  jqi "$T/$1/config.json" '.process.env += ["FROM_CONFIG=yes"]'
  bivy run -d -b "$T/$1" "$1"
}

test_exec_exit_status() {
  start_ctr e1
  bivy exec e1 true
  rc=0; bivy exec e1 sh -c 'exit 7' || rc=$?
  assert_eq "$rc" 7
  rc=0; bivy exec e1 sh -c 'kill -9 $$' || rc=$?
  assert_eq "$rc" 137 "128+SIGKILL"
  out=$(bivy exec e1 -- echo hello)
  assert_eq "$out" hello
}

test_exec_env_cwd_user() {
  start_ctr e2
  out=$(bivy exec -e FOO=bar -e FROM_CONFIG=overridden --cwd /tmp -u 1000:1001 e2 sh -c 'echo "$FOO $FROM_CONFIG"; pwd; id -u; id -g')
  assert_eq "$(sed -n 1p <<<"$out")" "bar overridden"
  assert_eq "$(sed -n 2p <<<"$out")" /tmp
  assert_eq "$(sed -n 3p <<<"$out")" 1000
  assert_eq "$(sed -n 4p <<<"$out")" 1001
  # defaults come from the container's config
  out=$(bivy exec e2 sh -c 'echo $FROM_CONFIG; pwd; id -u')
  assert_eq "$out" "$(printf 'yes\n/\n0')"
  expect_fail "--user" bivy exec -u alice e2 true
  expect_fail "--env" bivy exec -e NOEQUALS e2 true
  expect_fail "--cwd" bivy exec --cwd relative e2 true
}

test_exec_joins_namespaces_and_cgroup() {
  start_ctr e3
  ipid=$(bivy state e3 | jq .pid)
  bivy exec -d --pid-file "$T/epid" e3 sleep 999
  epid=$(cat "$T/epid")
  for n in pid mnt net ipc uts cgroup; do
    assert_eq "$(readlink /proc/$epid/ns/$n)" "$(readlink /proc/$ipid/ns/$n)" "$n namespace"
  done
  bivy ps --format json e3 | jq -e --argjson p "$epid" 'index($p) != null' >/dev/null || fail "exec'd pid not in the cgroup"
  # inside: pid 1 is the init, we are not
  out=$(bivy exec e3 sh -c 'cat /proc/1/comm; echo $$')
  assert_eq "$(sed -n 1p <<<"$out")" sleep
  [ "$(sed -n 2p <<<"$out")" != 1 ] || fail "exec'd process is pid 1"
  # the container's root, not the host's
  out=$(bivy exec e3 ls /)
  assert_not_contains "$out" "work"
  # fds: only stdio
  assert_eq "$(bivy exec e3 ls /proc/1/fd | tr '\n' ' ')" "0 1 2 "
}

test_exec_inherits_security_settings() {
  start_ctr e4
  out=$(bivy exec e4 cat /proc/self/status)
  assert_eq "$(awk '$1 == "CapBnd:" {print $2}' <<<"$out")" 0000000020000420 "container's bounding set"
  assert_eq "$(awk '$1 == "NoNewPrivs:" {print $2}' <<<"$out")" 1
  assert_eq "$(bivy exec e4 sh -c 'ulimit -n')" 1024 "container's rlimit"
  # --cap adds one: CAP_NET_ADMIN is bit 12
  out=$(bivy exec --cap CAP_NET_ADMIN e4 cat /proc/self/status)
  assert_eq "$(awk '$1 == "CapEff:" {print $2}' <<<"$out")" 0000000020001420
  expect_fail 'unknown capability "CAP_NOPE"' bivy exec --cap CAP_NOPE e4 true
}

test_exec_process_file() {
  start_ctr e5
  cat >"$T/proc.json" <<'EOF'
{"terminal": false, "user": {"uid": 2000, "gid": 2000}, "args": ["sh", "-c", "echo $X; id -u; pwd; exit 4"],
 "env": ["PATH=/bin", "X=from-file"], "cwd": "/dev"}
EOF
  rc=0; out=$(bivy exec --process "$T/proc.json" e5) || rc=$?
  assert_eq "$rc" 4
  assert_eq "$out" "$(printf 'from-file\n2000\n/dev')"
  echo '{"args": 3}' >"$T/bad.json"
  expect_fail "--process" bivy exec --process "$T/bad.json" e5
}

test_exec_refused_unless_running() {
  mkbundle "$T/e6" sleep 1000
  bivy create -b "$T/e6" e6
  expect_fail "not running" bivy exec e6 true
  bivy start e6
  bivy exec e6 true
  bivy kill e6 KILL
  for _ in $(seq 1 100); do [ "$(bivy state e6 | jq -r .status)" = stopped ] && break; sleep 0.1; done
  expect_fail "not running" bivy exec e6 true
  expect_fail "container nope does not exist" bivy exec nope true
}

test_exec_missing_binary() {
  start_ctr e7
  expect_fail 'exec "no-such-cmd": executable file not found in $PATH' bivy exec e7 no-such-cmd
  expect_fail '/no/such' bivy exec e7 /no/such
  # nothing left running
  assert_eq "$(bivy ps --format json e7 | jq length)" 1
}

test_exec_tty_console_socket() {
  start_ctr e8
  "$HELPERS/recvtty" "$T/tty.sock" >"$T/tty.out" 2>"$T/tty.err" &
  rpid=$!
  for _ in $(seq 1 50); do [ -S "$T/tty.sock" ] && break; sleep 0.1; done
  bivy exec -t --console-socket "$T/tty.sock" e8 sh -c 'tty; test -t 0 && echo stdin-is-tty'
  wait $rpid || true
  out=$(tr -d '\r' <"$T/tty.out")
  assert_contains "$out" "/dev/pts/"
  assert_contains "$out" "stdin-is-tty"
  expect_fail "console-socket" bivy exec -t e8 true
}

test_create_terminal_console_socket() {
  mkbundle "$T/t1" sh -c 'tty; test -t 1 && echo stdout-is-tty'
  jqi "$T/t1/config.json" '.process.terminal = true'
  expect_fail "--console-socket is required" bivy create -b "$T/t1" t1
  [ ! -e "$T/root/t1" ] || fail "state left behind"
  "$HELPERS/recvtty" "$T/t1.sock" >"$T/t1.out" 2>"$T/t1.err" &
  rpid=$!
  for _ in $(seq 1 50); do [ -S "$T/t1.sock" ] && break; sleep 0.1; done
  bivy create --console-socket "$T/t1.sock" -b "$T/t1" t1
  bivy start t1
  wait $rpid || true
  out=$(tr -d '\r' <"$T/t1.out")
  assert_contains "$out" "/dev/pts/0"
  assert_contains "$out" "stdout-is-tty"
}
