# seccomp: OCI linux.seccomp through libseccomp, the built-in default profile, the notify
# listener and the compiled-filter cache. Tests named test_helper_* run a command through
# tests/helpers/seccomp-exec (the runtime's prepare + install + exec, without a container);
# test_container_* go through `bivy run`.
TIERS="host v2"

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
    "syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_NOTIFY"}]}'
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
  out=$(sexec "$T/p.json" -- sh -c "grep '^Seccomp:' /proc/self/status; $HELPERS/seccomp-probe getpriority 0 0")
  assert_contains "$out" "Seccomp:	2"
  assert_contains "$out" "getpriority ret=-1 errno=38"
  # without no_new_privs a process lacking CAP_SYS_ADMIN cannot load a filter: clear message
  expect_fail "needs process.noNewPrivileges or CAP_SYS_ADMIN" \
    setpriv --bounding-set -sys_admin --inh-caps -all -- "$HELPERS/seccomp-exec" --no-nnp "$T/p.json" -- true
}

# ---- through `bivy run` ----

# A private copy of the busybox rootfs with seccomp-probe (and the libraries it needs) in /h.
rootfs_with_probe() {
  bivy rootfs create "$T/rfs" >/dev/null
  mkdir -p "$T/rfs/h"
  cp "$HELPERS/seccomp-probe" "$T/rfs/h/"
  local lib
  for lib in $(ldd "$HELPERS/seccomp-probe" | grep -o '/[^ ]*'); do cp -L --parents "$lib" "$T/rfs"; done
}

# mkbundle on the private rootfs running the (multi-line) shell script $2 in bundle dir $1
probe_bundle() {
  mkbundle "$1" sh
  jqi "$1/config.json" --arg r "$T/rfs" --arg script "$2" \
    '.root.path = $r | .process.args = ["sh", "-c", $script] |
     .process.env += ["LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu:/lib64"]'
}

test_container_default_profile() {
  rootfs_with_probe
  probe_bundle "$T/b" '
    grep "^Seccomp" /proc/self/status
    /h/seccomp-probe keyctl 0 -3 0
    /h/seccomp-probe clone3 0 0
    unshare -m true 2>&1; echo "unshare rc=$?"
    mount -t tmpfs none /mnt 2>&1; echo "mount rc=$?"
    echo data >/dev/shm/f && cat /dev/shm/f && ls /h && sleep 0.01 && echo tools-ok
    nc -l -p 8080 >/dev/shm/got &
    for i in $(seq 100); do echo over-nc | nc 127.0.0.1 8080 2>/dev/null && break; sleep 0.1; done
    wait; cat /dev/shm/got'
  assert_eq "$(jq -r .linux.seccomp.defaultAction "$T/b/config.json")" SCMP_ACT_ERRNO "bivy spec embeds the default profile"
  # a network namespace of our own with loopback up, for nc
  ns=bivyscmp$$
  ip netns add "$ns"
  on_exit "ip netns del $ns"
  ip netns exec "$ns" ip link set lo up
  jqi "$T/b/config.json" --arg p "/run/netns/$ns" '.linux.namespaces |= map(if .type == "network" then .path = $p else . end)'
  out=$(bivy run -b "$T/b" sc1 2>&1)
  echo "$out"
  assert_contains "$out" "Seccomp:	2"
  assert_contains "$out" "Seccomp_filters:	1"
  assert_contains "$out" "keyctl ret=-1 errno=1"
  assert_contains "$out" "clone3 ret=-1 errno=38"
  assert_contains "$out" "unshare rc=1"
  assert_contains "$out" "mount rc=1"
  assert_contains "$out" "Operation not permitted"
  assert_contains "$out" "tools-ok"
  assert_contains "$out" "over-nc"
}

test_container_errno_args_kill_log() {
  rootfs_with_probe
  probe_bundle "$T/b" '
    /h/seccomp-probe getpriority 0 0
    /h/seccomp-probe getpgid 4242
    /h/seccomp-probe getpgid 0
    /h/seccomp-probe getsid 0
    echo $$ >/dev/shm/pid'
  jqi "$T/b/config.json" '.linux.seccomp = {"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
    {"names":["getpriority"],"action":"SCMP_ACT_ERRNO","errnoRet":38},
    {"names":["getpgid"],"action":"SCMP_ACT_ERRNO","errnoRet":13,"args":[{"index":0,"value":4242,"op":"SCMP_CMP_EQ"}]},
    {"names":["getsid"],"action":"SCMP_ACT_LOG"}]}'
  out=$(bivy run -b "$T/b" sc2)
  echo "$out"
  assert_contains "$out" "getpriority ret=-1 errno=38"
  assert_contains "$out" "getpgid ret=-1 errno=13"
  [[ "$out" =~ getpgid\ ret=[0-9]+\ errno=0 ]] || fail "getpgid(0) must pass"
  [[ "$out" =~ getsid\ ret=[0-9]+\ errno=0 ]] || fail "LOG must allow"
  wait_for sh -c "dmesg | grep -q 'comm=\"seccomp-probe\" .*syscall=124 .*code=0x7ffc0000'"

  # the container process itself makes the call
  mkbundle "$T/k" mkdir /dev/shm/x
  jqi "$T/k/config.json" '.linux.seccomp = {"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
    {"names":["mkdir","mkdirat"],"action":"SCMP_ACT_KILL_PROCESS"}]}'
  rc=0
  bivy run -b "$T/k" sc3 || rc=$?
  assert_eq "$rc" 159 "killed by SIGSYS"
}

test_container_notify_listener() {
  sock=$T/l.sock
  "$HELPERS/seccomp-listener" "$sock" "$T/state.json" --errno 0 >"$T/listener.log" 2>&1 &
  on_exit "kill $! 2>/dev/null"
  wait_for test -e "$sock.ready"
  mkbundle "$T/b" sh -c 'mkdir /dev/shm/x && echo made; test -d /dev/shm/x && echo exists || echo absent'
  jqi "$T/b/config.json" --arg s "$sock" '.linux.seccomp = {"defaultAction":"SCMP_ACT_ALLOW","listenerPath":$s,
    "listenerMetadata":"from-bivy","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_NOTIFY"}]}'
  out=$(bivy run -b "$T/b" sc4)
  echo "$out"
  assert_contains "$out" made
  assert_contains "$out" absent "the listener answered success without creating the directory"
  wait_for grep -q "mkdir.* -> errno 0" "$T/listener.log"
  cat "$T/state.json"
  jq -e '.fds == ["seccompFd"] and .metadata == "from-bivy" and .state.id == "sc4" and .pid > 1 and .ociVersion != null' \
    "$T/state.json" || fail "bad containerProcessState"
}

test_container_cache_same_filter() {
  cmd=(sh -c 'grep "^Seccomp" /proc/self/status; unshare -m true 2>&1; mount -t tmpfs none /mnt 2>&1; echo end')
  mkbundle "$T/b" "${cmd[@]}"
  a=$(bivy run -b "$T/b" sc5 2>&1 || true)
  f=$(ls "$T"/root/seccomp-cache/*.bpf)
  [ -s "$f" ] || fail "no cache entry"
  size=$(stat -c %s "$f")
  b=$(bivy run -b "$T/b" sc6 2>&1 || true)
  assert_eq "$b" "$a" "cached start behaves like the uncached one"
  assert_contains "$a" "Seccomp_filters:	1"
  assert_contains "$a" "Operation not permitted"
  truncate -s 10 "$f"
  c=$(bivy run -b "$T/b" sc7 2>&1 || true)
  assert_eq "$c" "$a"
  assert_eq "$(stat -c %s "$f")" "$size" "truncated entry rebuilt"
}

test_container_bad_profile_rejected() {
  mkbundle "$T/b" true
  jqi "$T/b/config.json" '.linux.seccomp.syscalls[0].args = [{"index":7,"value":0,"op":"SCMP_CMP_EQ"}]'
  expect_fail "linux.seccomp.syscalls[0].args[0].index: 7 out of range (0..5)" bivy run -b "$T/b" sc8
  [ -z "$(bivy list -q)" ] || fail "a failed create leaves nothing behind"
}

test_container_without_no_new_privileges_and_exec() {
  # without no_new_privs the filter is loaded while CAP_SYS_ADMIN is still held
  mkbundle "$T/b" sh -c 'grep -E "^(NoNewPrivs|Seccomp):" /proc/self/status; unshare -m true 2>&1; sleep 1000'
  jqi "$T/b/config.json" '.process.noNewPrivileges = false'
  bivy run -d -b "$T/b" sc9
  pid=$(pid_of sc9)
  assert_eq "$(grep '^NoNewPrivs:' "/proc/$pid/status" | cut -f2)" 0
  assert_eq "$(grep '^Seccomp:' "/proc/$pid/status" | cut -f2)" 2
  # bivy exec applies the container's profile to the new process too
  out=$(bivy exec sc9 sh -c 'grep "^Seccomp_filters:" /proc/self/status; unshare -m true 2>&1; echo rc=$?')
  assert_contains "$out" "Seccomp_filters:	1"
  assert_contains "$out" "Operation not permitted"
  assert_contains "$out" "rc=1"
  bivy delete -f sc9
}
