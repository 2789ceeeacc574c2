# Security properties of the lifecycle: separate namespaces, user namespace mappings,
# joining namespaces by path, fd hygiene (--preserve-fds, no leaks), the cwd escape of
# CVE-2024-21626 and the /proc/PID/exe exposure of CVE-2019-5736.
TIERS="host v2"

status_is() { [ "$(bivy state "$1" 2>/dev/null | jq -r .status)" = "$2" ]; }

test_namespaces_are_separate() {
  mkbundle "$T/n1" sh -c 'for n in pid mnt net ipc uts cgroup; do echo "$n $(readlink /proc/self/ns/$n)"; done'
  out=$(bivy run -b "$T/n1" n1)
  for n in pid mnt net ipc uts cgroup; do
    inside=$(awk -v n=$n '$1 == n {print $2}' <<<"$out")
    [ -n "$inside" ] || fail "no $n namespace link inside: $out"
    [ "$inside" != "$(readlink /proc/self/ns/$n)" ] || fail "$n namespace shared with the host ($inside)"
  done
  # the cgroup namespace is rooted at the container's cgroup
  mkbundle "$T/n2" cat /proc/self/cgroup
  out=$(bivy run -b "$T/n2" n2)
  grep -q ":/$" <<<"$out" || fail "cgroup namespace not rooted at the container's cgroup: $out"
  assert_not_contains "$out" "$CG_PARENT"
}

test_user_namespace_mappings() {
  mkbundle "$T/u1" sh -c 'cat /proc/self/uid_map; id -u; sleep 1000'
  jqi "$T/u1/config.json" '.linux.namespaces += [{"type": "user"}]
    | .linux.uidMappings = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    | .linux.gidMappings = [{"containerID": 0, "hostID": 100000, "size": 65536}]'
  bivy run -d -b "$T/u1" u1 >"$T/out" 2>&1
  pid=$(bivy state u1 | jq .pid)
  wait_for grep -q '^0$' "$T/out"
  read -r cid hid size < <(head -1 "$T/out")
  assert_eq "$cid $hid $size" "0 100000 65536" "uid_map inside"
  # uid 0 inside is uid 100000 on the host
  assert_eq "$(awk '/^Uid:/ {print $2}' /proc/$pid/status)" 100000
  assert_eq "$(awk '/^Gid:/ {print $2}' /proc/$pid/status)" 100000
  [ "$(readlink /proc/$pid/ns/user)" != "$(readlink /proc/self/ns/user)" ] || fail "no new user namespace"
  assert_eq "$(cat /proc/$pid/setgroups)" deny "setgroups denied in the container's user namespace"
  bivy delete -f u1
  # additionalGids still work in a user namespace (setgroups stays allowed for them)
  mkbundle "$T/u2" id -G
  jqi "$T/u2/config.json" '.linux.namespaces += [{"type": "user"}]
    | .linux.uidMappings = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    | .linux.gidMappings = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    | .process.user.additionalGids = [5, 7]'
  assert_eq "$(bivy run -b "$T/u2" u2)" "0 5 7"
}

test_join_namespace_by_path() {
  mkbundle "$T/j1" sleep 1000
  jqi "$T/j1/config.json" '.hostname = "alpha"'
  bivy run -d -b "$T/j1" j1
  pid=$(bivy state j1 | jq .pid)
  mkbundle "$T/j2" sh -c 'hostname; readlink /proc/self/ns/uts; readlink /proc/self/ns/net'
  jqi "$T/j2/config.json" --arg uts "/proc/$pid/ns/uts" --arg net "/proc/$pid/ns/net" \
    'del(.hostname) | .linux.namespaces = [.linux.namespaces[] | if .type == "uts" then .path = $uts elif .type == "network" then .path = $net else . end]'
  out=$(bivy run -b "$T/j2" j2)
  assert_eq "$(sed -n 1p <<<"$out")" alpha "hostname of the joined uts namespace"
  assert_eq "$(sed -n 2p <<<"$out")" "$(readlink /proc/$pid/ns/uts)"
  assert_eq "$(sed -n 3p <<<"$out")" "$(readlink /proc/$pid/ns/net)"
  # a shared pid namespace: pid 1 there is the first container's init
  mkbundle "$T/j4" sh -c 'cat /proc/1/comm; readlink /proc/self/ns/pid'
  jqi "$T/j4/config.json" --arg pid "/proc/$pid/ns/pid" \
    '.linux.namespaces = [.linux.namespaces[] | if .type == "pid" then .path = $pid else . end]'
  out=$(bivy run -b "$T/j4" j4)
  assert_eq "$(sed -n 1p <<<"$out")" sleep
  assert_eq "$(sed -n 2p <<<"$out")" "$(readlink /proc/$pid/ns/pid)"
  # a path that is not a namespace fails cleanly
  mkbundle "$T/j3" true
  jqi "$T/j3/config.json" '.linux.namespaces = [.linux.namespaces[] | if .type == "uts" then .path = "/nonexistent/ns" else . end]'
  expect_fail "/nonexistent/ns" bivy run -b "$T/j3" j3
  [ ! -e "$T/root/j3" ] || fail "state left behind"
}

test_preserve_fds() {
  echo three >"$T/f3"
  echo four >"$T/f4"
  mkbundle "$T/p1" sh -c 'cat <&3; cat <&4; ls /proc/self/fd | tr "\n" " "'
  out=$(bivy run --preserve-fds 2 -b "$T/p1" p1 3<"$T/f3" 4<"$T/f4")
  assert_eq "$(sed -n 1p <<<"$out")" three
  assert_eq "$(sed -n 2p <<<"$out")" four
  # 0-2, the preserved 3 and 4, and ls's own directory fd (5): nothing else
  assert_eq "$(sed -n 3p <<<"$out")" "0 1 2 3 4 5 "
  # without --preserve-fds the same fds do not reach the container
  mkbundle "$T/p2" sh -c 'ls /proc/self/fd | tr "\n" " "'
  out=$(bivy run -b "$T/p2" p2 3<"$T/f3" 4<"$T/f4")
  assert_eq "$out" "0 1 2 3 "
  # a directory would hand the container a host path
  expect_fail "fd 3 is a directory" bivy run --preserve-fds 1 -b "$T/p2" p3 3<"$T"
  [ ! -e "$T/root/p3" ] || fail "state left behind"
}

test_no_host_fd_leak_into_init() {
  mkbundle "$T/l1" sleep 1000
  bivy run -d -b "$T/l1" l1 7<"$T/l1/config.json"
  pid=$(bivy state l1 | jq .pid)
  # the init's fds: exactly stdio (as the runtime was given them)
  assert_eq "$(ls /proc/$pid/fd | sort -n | tr '\n' ' ')" "0 1 2 "
  for fd in 0 1 2; do
    tgt=$(readlink /proc/$pid/fd/$fd)
    assert_not_contains "$tgt" "$T/root" "fd $fd of the init points into the state dir"
  done
}

test_cwd_proc_self_fd_refused() {
  # CVE-2024-21626: a cwd resolving to an fd the runtime leaked would be a host directory.
  for n in 3 4 5 6 7 8 9 10 11 12; do
    mkbundle "$T/c$n" true
    jqi "$T/c$n/config.json" --arg cwd "/proc/self/fd/$n" '.process.cwd = $cwd'
    rc=0; out=$(bivy run -b "$T/c$n" c$n 2>&1) || rc=$?
    [ $rc -ne 0 ] || fail "cwd /proc/self/fd/$n was accepted: $out"
    assert_contains "$out" "process.cwd"
    [ ! -e "$T/root/c$n" ] || fail "state left behind"
  done
}

test_init_exe_is_not_the_runtime() {
  mkbundle "$T/x1" sleep 1000
  jqi "$T/x1/config.json" '.process.user = {"uid": 1000, "gid": 1000}'
  bivy create -b "$T/x1" x1
  pid=$(bivy state x1 | jq .pid)
  # created: the init is bivy's clone, already uid 1000, but not dumpable, so its /proc
  # entries stay root's and a container process could not open /proc/PID/exe
  assert_eq "$(awk '/^Uid:/ {print $2}' /proc/$pid/status)" 1000
  assert_eq "$(stat -c %u /proc/$pid/fd)" 0 "created init is not dumpable"
  bivy start x1
  # after exec: the program, dumpable again (owned by its uid), and not the bivy binary
  exe=$(readlink /proc/$pid/exe)
  [ "$exe" != "$(readlink -f "$BIVY")" ] || fail "container init runs the bivy binary"
  assert_eq "$exe" /bin/busybox
  assert_eq "$(stat -c %u /proc/$pid/fd)" 1000
}

test_exec_process_not_dumpable_before_exec() {
  mkbundle "$T/y1" sleep 1000
  bivy run -d -b "$T/y1" y1
  # the exec'd program is the container's, not the runtime
  bivy exec -d --pid-file "$T/epid" y1 sleep 999
  epid=$(cat "$T/epid")
  assert_eq "$(readlink /proc/$epid/exe)" /bin/busybox
  assert_eq "$(readlink /proc/$epid/ns/pid)" "$(readlink /proc/$(bivy state y1 | jq .pid)/ns/pid)"
}
