# Process hardening: capabilities (exact sets, unavailable-cap refusal), no_new_privs,
# rlimits, user/groups/umask, hostname/domainname, hooks (state on stdin, env, exit status,
# timeout) and the terminal over a console socket.
#
# Containers run through run_ctr: `bivy run`, or with ROOTFS_RUNNER=helper
# tests/helpers/rootfs-run, a mini runner that drives the same runtime/linux.h functions
# without the lifecycle code (to tell a rootfs bug from a lifecycle one).
TIERS="host v2"


capline() { awk -v k="$1:" '$1 == k {print $2}' <<<"$2"; }

test_default_caps() {
  mkbundle "$T/c1" cat /proc/self/status
  out=$(run_ctr "$T/c1")
  # CAP_KILL(5) CAP_NET_BIND_SERVICE(10) CAP_AUDIT_WRITE(29)
  assert_eq "$(capline CapBnd "$out")" 0000000020000420
  assert_eq "$(capline CapPrm "$out")" 0000000020000420
  assert_eq "$(capline CapEff "$out")" 0000000020000420
  assert_eq "$(capline CapInh "$out")" 0000000000000000
  assert_eq "$(capline CapAmb "$out")" 0000000000000000
}

test_caps_exact_sets_non_root() {
  mkbundle "$T/c2" cat /proc/self/status
  jqi "$T/c2/config.json" '.process.user = {"uid": 1000, "gid": 1000} | .process.capabilities = {
      "bounding": ["CAP_NET_RAW", "CAP_KILL", "CAP_CHOWN"], "effective": ["CAP_NET_RAW"],
      "permitted": ["CAP_NET_RAW", "CAP_KILL"], "inheritable": ["CAP_NET_RAW"],
      "ambient": ["CAP_NET_RAW", "CAP_KILL"]}'
  out=$(run_ctr "$T/c2")
  assert_eq "$(capline CapBnd "$out")" 0000000000002021 "bounding = NET_RAW|KILL|CHOWN"
  assert_eq "$(capline CapInh "$out")" 0000000000002000 "inheritable exactly as configured"
  # KILL is not inheritable, so it cannot be ambient: after exec only NET_RAW survives
  assert_eq "$(capline CapAmb "$out")" 0000000000002000
  assert_eq "$(capline CapPrm "$out")" 0000000000002000
  assert_eq "$(capline CapEff "$out")" 0000000000002000
}

test_unavailable_capability_refused() {
  mkbundle "$T/c3" true
  jqi "$T/c3/config.json" '.process.capabilities.bounding += ["CAP_SYS_RESOURCE"]'
  expect_fail "process.capabilities.bounding: CAP_SYS_RESOURCE is not available to the runtime" \
    bivy_nores run -b "$T/c3" c3
  [ ! -e "$T/root/c3" ] || fail "refused create left its state"
}

test_no_new_privs() {
  mkbundle "$T/c4" grep NoNewPrivs /proc/self/status
  jqi "$T/c4/config.json" '.process.noNewPrivileges = true'
  assert_contains "$(run_ctr "$T/c4")" "NoNewPrivs:	1"
  # without no_new_privs a seccomp filter needs CAP_SYS_ADMIN, which this process lacks
  jqi "$T/c4/config.json" '.process.noNewPrivileges = false | del(.linux.seccomp)'
  assert_contains "$(run_ctr "$T/c4")" "NoNewPrivs:	0"
}

test_rlimits() {
  mkbundle "$T/c5" sh -c 'ulimit -n; ulimit -Hn; ulimit -c'
  jqi "$T/c5/config.json" '.process.rlimits = [{"type":"RLIMIT_NOFILE","soft":1234,"hard":4321},
      {"type":"RLIMIT_CORE","soft":0,"hard":0}]'
  assert_eq "$(run_ctr "$T/c5")" "1234
4321
0"
  # raising a hard limit needs CAP_SYS_RESOURCE, which a runtime without it cannot do
  local hard
  hard=$(ulimit -Hn)
  [ "$hard" != unlimited ] || fail "the test needs a finite hard RLIMIT_NOFILE"
  jqi "$T/c5/config.json" --argjson h "$((hard + 1000))" '.process.rlimits = [{"type":"RLIMIT_NOFILE","soft":1024,"hard":$h}]'
  expect_fail "RLIMIT_NOFILE" bivy_nores run -b "$T/c5" c5
}

test_user_groups_umask() {
  mkbundle "$T/c6" sh -c 'id -u; id -g; id -G; umask; touch /tmp/f; stat -c %a /tmp/f'
  jqi "$T/c6/config.json" '.root.readonly = false | .process.user = {"uid": 1000, "gid": 1001,
      "additionalGids": [5, 6], "umask": 23}'
  cp -a "$ROOTFS" "$T/rootfs"
  chmod 1777 "$T/rootfs/tmp"
  jqi "$T/c6/config.json" --arg r "$T/rootfs" '.root.path = $r'
  out=$(run_ctr "$T/c6")
  assert_eq "$out" "1000
1001
1001 5 6
0027
640"
}

test_supplementary_groups_not_inherited() {
  mkbundle "$T/c7" sh -c 'id -G'
  jqi "$T/c7/config.json" '.process.user = {"uid": 0, "gid": 0}'
  # the runtime itself runs with extra groups (adm, cdrom): none may reach the container
  local out
  if [ "${ROOTFS_RUNNER:-bivy}" = bivy ]; then
    out=$(setpriv --groups 4,24 -- "$BIVY" --root "$T/root" run -b "$T/c7" c7)
  else
    out=$(setpriv --groups 4,24 -- "$HELPERS/rootfs-run" "$T/c7")
  fi
  assert_eq "$out" "0" "the runtime's own groups leaked"
}

test_hostname_domainname() {
  local host_name
  host_name=$(hostname)
  mkbundle "$T/c8" sh -c 'hostname; cat /proc/sys/kernel/domainname'
  jqi "$T/c8/config.json" '.hostname = "box1" | .domainname = "example.org"'
  assert_eq "$(run_ctr "$T/c8")" "box1
example.org"
  assert_eq "$(hostname)" "$host_name" "host name changed"
}

test_hooks_state_env_and_failure() {
  mkbundle "$T/c9" true
  jqi "$T/c9/config.json" --arg t "$T" '.hooks = {
      "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "cat >\($t)/state.json; echo $FOO >\($t)/env"],
                         "env": ["FOO=from-hook"]}],
      "createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "cat >\($t)/state2.json"]}]}'
  run_ctr "$T/c9"
  jq -e '.id and .ociVersion' "$T/state.json" >/dev/null || fail "createRuntime state: $(cat "$T/state.json")"
  jq -e '.id' "$T/state2.json" >/dev/null || fail "createContainer state: $(cat "$T/state2.json")"
  assert_eq "$(cat "$T/env")" "from-hook"
  jqi "$T/c9/config.json" '.hooks = {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "echo nope >&2; exit 3"]}]}'
  expect_fail "hook createRuntime[0] /bin/sh: exit status 3: nope" run_ctr "$T/c9"
}

test_hook_timeout() {
  mkbundle "$T/c10" true
  jqi "$T/c10/config.json" --arg t "$T" '.hooks = {"createRuntime": [{"path": "/bin/sh",
      "args": ["sh", "-c", "echo $$ >\($t)/hookpid; exec sleep 100"], "timeout": 1}]}'
  expect_fail "hook createRuntime[0] /bin/sh: timed out after 1 s" run_ctr "$T/c10"
  # the hook was killed, not left behind
  local pid
  pid=$(cat "$T/hookpid")
  ! kill -0 "$pid" 2>/dev/null || fail "hook $pid still running"
}

test_terminal_console_socket() {
  "$HELPERS/recvtty" "$T/tty.sock" >"$T/tty.out" 2>"$T/tty.err" &
  local rpid=$!
  on_exit "kill $rpid 2>/dev/null"
  wait_for test -S "$T/tty.sock"
  mkbundle "$T/c11" sh -c 'tty; stty size; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-tty; echo "console $(stat -c %t:%T /dev/console) pts0 $(stat -c %t:%T /dev/pts/0)"'
  jqi "$T/c11/config.json" '.process.terminal = true | .process.consoleSize = {"height": 40, "width": 100}'
  run_ctr "$T/c11" --console-socket "$T/tty.sock"
  wait "$rpid" || fail "recvtty failed: $(cat "$T/tty.err")"
  out=$(tr -d '\r' <"$T/tty.out")
  assert_contains "$out" "/dev/pts/0" "the container's own devpts instance"
  assert_contains "$out" "40 100" "consoleSize"
  assert_contains "$out" "all-tty"
  grep -Eq 'console ([0-9a-f]+:0) pts0 \1' <<<"$out" || fail "/dev/console is not the container's pty: $out"
}
