# seccomp, host tier only (kept out of the slow v2 VM tier): test_helper_* run a command through
# tests/helpers/seccomp-exec (the runtime's bivy_seccomp_prepare + install + exec, without a
# container); the test_container_* here complete 50-seccomp.sh.

probe() { "$HELPERS/seccomp-probe" "$@"; }

sexec() { "$HELPERS/seccomp-exec" "$@"; }

# profile FILE JSON: write a linux.seccomp object

profile() { printf '%s\n' "$2" >"$1"; }

test_helper_default_profile_blocks_and_allows() {
  out=$(sexec builtin:default -- sh -c '
    grep "^Seccomp:" /proc/self/status
    '"$HELPERS"'/seccomp-probe keyctl 0 -3 0
    '"$HELPERS"'/seccomp-probe add_key str:user str:k str:v 1 -3
    '"$HELPERS"'/seccomp-probe clone3 0 0
    '"$HELPERS"'/seccomp-probe personality 0xffffffff
    '"$HELPERS"'/seccomp-probe personality 0x400000
    '"$HELPERS"'/seccomp-probe unshare 0x20000
    '"$HELPERS"'/seccomp-probe bpf 0 0 0
    busybox unshare -m true 2>&1; echo "unshare rc=$?"
    busybox mount -t tmpfs none /mnt 2>&1; echo "mount rc=$?"
    echo data >'"$T"'/f && busybox cat '"$T"'/f && busybox ls '"$T"' && busybox sleep 0.01 && echo tools-ok')
  echo "$out"
  assert_contains "$out" "Seccomp:	2"
  assert_contains "$out" "keyctl ret=-1 errno=1"
  assert_contains "$out" "add_key ret=-1 errno=1"
  assert_contains "$out" "clone3 ret=-1 errno=38" "clone3 must say ENOSYS so glibc falls back to clone"
  assert_contains "$out" "personality ret=0 errno=0" "the personality query is allowed"
  assert_contains "$out" "personality ret=-1 errno=1" "READ_IMPLIES_EXEC is refused"
  assert_contains "$out" "unshare ret=-1 errno=1"
  assert_contains "$out" "bpf ret=-1 errno=1"
  assert_contains "$out" "Operation not permitted"
  assert_contains "$out" "unshare rc=1"
  assert_contains "$out" "mount rc=1"
  assert_contains "$out" "tools-ok"
  # the same commands without the filter do get through (the test can fail)
  out=$(probe unshare 0)
  assert_contains "$out" "unshare ret=0 errno=0"
}

test_helper_default_profile_newer_syscalls_get_enosys() {
  # 457 = statmount (Linux 6.8), newer than every syscall the profile names: ENOSYS (so
  # callers fall back) instead of EPERM. Without a filter this kernel has it (EFAULT here).
  out=$(probe '#457' 0 0 0 0)
  assert_not_contains "$out" "errno=38" "this kernel has statmount"
  out=$(sexec builtin:default -- "$HELPERS/seccomp-probe" '#457' 0 0 0 0)
  assert_contains "$out" "#457 ret=-1 errno=38"
  # a deny-list profile lets it through
  profile "$T/p.json" '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["keyctl"],"action":"SCMP_ACT_ERRNO"}]}'
  out=$(sexec "$T/p.json" -- "$HELPERS/seccomp-probe" '#457' 0 0 0 0)
  assert_not_contains "$out" "errno=38"
  # and older syscalls missing from the allow-list keep the default action
  out=$(sexec builtin:default -- "$HELPERS/seccomp-probe" keyctl 0 -3 0)
  assert_contains "$out" "keyctl ret=-1 errno=1"
}

test_helper_default_profile_network_works() {
  # in a network namespace of our own: only its loopback is involved
  port=$((20000 + RANDOM % 20000))
  unshare -n sh -c '
    busybox ip link set lo up
    "$1/seccomp-exec" builtin:default -- busybox nc -l -p "$2" >"$3/got" &
    for i in $(seq 100); do
      echo hello-seccomp | "$1/seccomp-exec" builtin:default -- busybox nc 127.0.0.1 "$2" 2>/dev/null && break
      sleep 0.1
    done
    wait' sh "$HELPERS" "$port" "$T"
  assert_eq "$(cat "$T/got")" "hello-seccomp"
}

test_helper_errno_ret_and_args() {
  profile "$T/p.json" '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
    {"names":["getpriority"],"action":"SCMP_ACT_ERRNO","errnoRet":38},
    {"names":["getpgid"],"action":"SCMP_ACT_ERRNO","errnoRet":13,
     "args":[{"index":0,"value":4242,"op":"SCMP_CMP_EQ"}]},
    {"names":["getsid"],"action":"SCMP_ACT_ERRNO",
     "args":[{"index":0,"value":100,"op":"SCMP_CMP_GE"},{"index":0,"value":200,"op":"SCMP_CMP_LE"}]}]}'
  out=$(sexec "$T/p.json" -- sh -c "
    $HELPERS/seccomp-probe getpriority 0 0
    $HELPERS/seccomp-probe getpgid 4242
    $HELPERS/seccomp-probe getpgid 0
    $HELPERS/seccomp-probe getsid 150")
  echo "$out"
  assert_contains "$out" "getpriority ret=-1 errno=38"
  assert_contains "$out" "getpgid ret=-1 errno=13"
  [[ "$out" =~ getpgid\ ret=[1-9][0-9]*\ errno=0 ]] || fail "getpgid(0) must pass: $out"
  # two comparisons on one argument are split into two rules (OR), as runc does
  assert_contains "$out" "getsid ret=-1 errno=1"
}

test_helper_kill_process_is_sigsys() {
  profile "$T/p.json" '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getpgid"],"action":"SCMP_ACT_KILL_PROCESS"}]}'
  rc=0
  sexec "$T/p.json" -- "$HELPERS/seccomp-probe" getpgid 0 || rc=$?
  assert_eq "$rc" 159 "exit status of a process killed by SIGSYS"
  profile "$T/t.json" '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getpgid"],"action":"SCMP_ACT_TRAP"}]}'
  rc=0
  sexec "$T/t.json" -- "$HELPERS/seccomp-probe" getpgid 0 || rc=$?
  assert_eq "$rc" 159 "TRAP raises SIGSYS"
}

test_helper_log_allows_and_logs() {
  profile "$T/p.json" '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getpgid"],"action":"SCMP_ACT_LOG"}]}'
  out=$(sh -c 'echo $$ >"$0"; exec "$1" "$2" -- "$3" getpgid 0' "$T/pid" "$HELPERS/seccomp-exec" "$T/p.json" "$HELPERS/seccomp-probe")
  assert_contains "$out" "errno=0"
  pid=$(cat "$T/pid")
  # the kernel audit record of a SECCOMP_RET_LOG (code 0x7ffc0000) for this pid
  wait_for sh -c "dmesg | grep -q 'pid=$pid .*code=0x7ffc0000'"
}

test_helper_notify_listener_answers() {
  sock=$T/l.sock
  "$HELPERS/seccomp-listener" "$sock" "$T/state.json" --errno 0 >"$T/listener.log" 2>&1 &
  on_exit "kill $! 2>/dev/null"
  wait_for test -e "$sock.ready"
  profile "$T/p.json" '{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"'"$sock"'","listenerMetadata":"meta-42",
    "flags":["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],"syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_NOTIFY"}]}'
  sexec "$T/p.json" -- busybox mkdir "$T/made"
  [ ! -e "$T/made" ] || fail "the listener answered success without creating the directory"
  wait_for grep -q "mkdir.* -> errno 0" "$T/listener.log"
  jq -e '.fds == ["seccompFd"] and .metadata == "meta-42" and (.pid | type) == "number" and .state.id == "seccomp-exec"' \
    "$T/state.json" || fail "bad containerProcessState: $(cat "$T/state.json")"

  sock=$T/l2.sock
  "$HELPERS/seccomp-listener" "$sock" "$T/state2.json" --errno 13 >"$T/listener2.log" 2>&1 &
  on_exit "kill $! 2>/dev/null"
  wait_for test -e "$sock.ready"
  jqi "$T/p.json" --arg s "$sock" '.listenerPath = $s'
  expect_fail "Permission denied" sexec "$T/p.json" -- busybox mkdir "$T/made2"
  [ ! -e "$T/made2" ] || fail "mkdir got through"
  # other calls continue in the kernel
  sock=$T/l3.sock
  "$HELPERS/seccomp-listener" "$sock" "$T/state3.json" --syscall getpgid >"$T/listener3.log" 2>&1 &
  on_exit "kill $! 2>/dev/null"
  wait_for test -e "$sock.ready"
  jqi "$T/p.json" --arg s "$sock" '.listenerPath = $s'
  sexec "$T/p.json" -- busybox mkdir "$T/made3"
  [ -d "$T/made3" ] || fail "a continued mkdir must create the directory"
  wait_for grep -q "mkdir.* -> continue" "$T/listener3.log"
}

test_helper_cache_same_filter_and_rebuild() {
  cmd=(sh -c "grep -E '^Seccomp(_filters)?:' /proc/self/status; $HELPERS/seccomp-probe keyctl 0 -3 0; $HELPERS/seccomp-probe clone3 0 0; $HELPERS/seccomp-probe getpid")
  uncached=$(sexec builtin:default -- "${cmd[@]}" | sed 's/getpid ret=[0-9]*/getpid/')
  first=$(sexec --cache "$T/cache" --info "$T/i1" builtin:default -- "${cmd[@]}" | sed 's/getpid ret=[0-9]*/getpid/')
  second=$(sexec --cache "$T/cache" --info "$T/i2" builtin:default -- "${cmd[@]}" | sed 's/getpid ret=[0-9]*/getpid/')
  assert_eq "$(jq .fromCache "$T/i1")" false
  assert_eq "$(jq .fromCache "$T/i2")" true
  assert_eq "$(jq .insns "$T/i2")" "$(jq .insns "$T/i1")"
  assert_contains "$uncached" "Seccomp_filters:	1"
  assert_contains "$uncached" "keyctl ret=-1 errno=1"
  assert_eq "$first" "$uncached"
  assert_eq "$second" "$uncached"
  f=$(ls "$T"/cache/*.bpf)
  size=$(stat -c %s "$f")
  truncate -s 100 "$f"
  third=$(sexec --cache "$T/cache" --info "$T/i3" builtin:default -- "${cmd[@]}" | sed 's/getpid ret=[0-9]*/getpid/')
  assert_eq "$(jq .fromCache "$T/i3")" false "a truncated entry is not used"
  assert_eq "$third" "$uncached"
  assert_eq "$(stat -c %s "$f")" "$size" "the entry is rebuilt"
  sexec --cache "$T/cache" --info "$T/i4" builtin:default -- true
  assert_eq "$(jq .fromCache "$T/i4")" true
}

test_helper_malformed_profiles_rejected() {
  profile "$T/p.json" '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"},
    {"names":["write"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"EQUALS"}]}]}'
  expect_fail 'linux.seccomp.syscalls[1].args[0].op: unknown operator "EQUALS"' sexec "$T/p.json" -- true
  profile "$T/p.json" '{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_VAX"]}'
  expect_fail 'linux.seccomp.architectures[0]: unknown architecture "SCMP_ARCH_VAX"' sexec "$T/p.json" -- true
  # unknown syscall names are skipped with a warning, the rest applies
  profile "$T/p.json" '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["no_such_syscall","getpriority"],
    "action":"SCMP_ACT_ERRNO","errnoRet":38}]}'
  out=$(sexec "$T/p.json" -- "$HELPERS/seccomp-probe" getpriority 0 0 2>&1)
  assert_contains "$out" 'warning: seccomp: unknown syscall "no_such_syscall" skipped'
  assert_contains "$out" "getpriority ret=-1 errno=38"
}

test_helper_flags_and_architectures() {
  profile "$T/p.json" '{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
    "flags":["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW","SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
    "syscalls":[{"names":["getpriority"],"action":"SCMP_ACT_ERRNO","errnoRet":38}]}'
  out=$(sexec "$T/p.json" -- sh -c "grep '^Seccomp:' /proc/self/status; $HELPERS/seccomp-probe getpriority 0 0" 2>&1)
  assert_not_contains "$out" "not supported" "this kernel has every flag"
  assert_contains "$out" "Seccomp:	2"
  assert_contains "$out" "getpriority ret=-1 errno=38"
  # without no_new_privs a process lacking CAP_SYS_ADMIN cannot load a filter: clear message
  expect_fail "needs process.noNewPrivileges or CAP_SYS_ADMIN" \
    setpriv --bounding-set -sys_admin --inh-caps -all -- "$HELPERS/seccomp-exec" --no-nnp "$T/p.json" -- true
}

# ---- through `bivy run` ----

test_container_bad_profile_rejected() {
  mkbundle "$T/b" true
  jqi "$T/b/config.json" '.linux.seccomp.syscalls[0].args = [{"index":7,"value":0,"op":"SCMP_CMP_EQ"}]'
  expect_fail "linux.seccomp.syscalls[0].args[0].index: 7 out of range (0..5)" bivy run -b "$T/b" sc8
  [ -z "$(bivy list -q)" ] || fail "a failed create leaves nothing behind"
}

test_container_without_no_new_privileges() {
  # without no_new_privs the filter is loaded while CAP_SYS_ADMIN is still held
  mkbundle "$T/b" sh -c 'grep -E "^(NoNewPrivs|Seccomp):" /proc/self/status; unshare -m true 2>&1; echo rc=$?'
  jqi "$T/b/config.json" '.process.noNewPrivileges = false'
  out=$(bivy run -b "$T/b" sc9)
  assert_contains "$out" "NoNewPrivs:	0"
  assert_contains "$out" "Seccomp:	2"
  assert_contains "$out" "Operation not permitted"
  assert_contains "$out" "rc=1"
}

test_container_exec_gets_the_profile() {
  mkbundle "$T/b" sleep 1000
  bivy run -d -b "$T/b" sc10
  # bivy exec applies the container's profile to the new process too
  out=$(bivy exec sc10 sh -c 'grep "^Seccomp_filters:" /proc/self/status; unshare -m true 2>&1; echo rc=$?')
  assert_contains "$out" "Seccomp_filters:	1"
  assert_contains "$out" "Operation not permitted"
  assert_contains "$out" "rc=1"
  bivy delete -f sc10
}
