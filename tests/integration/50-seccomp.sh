# seccomp through `bivy run`: the built-in default profile, errnoRet/args/KILL/LOG, the notify
# listener and the compiled-filter cache. Runs in both cgroup tiers; the host-only
# 51-seccomp-host.sh covers the rest (helper-level cases, rejected profiles, exec).
TIERS="host v2"

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
