# podman drives bivy as its OCI runtime (--runtime): run, exit codes, resources, detached
# containers, exec, pause/unpause, stop, kill, rm. Everything podman keeps lives under $T
# (own --root/--runroot/--tmpdir, vfs storage) and container cgroups under the test's parent.
TIERS="host"
NEEDS="podman conmon"

pm() {
  podman --root "$T/pr" --runroot "$T/prr" --tmpdir "$T/ptmp" --storage-driver vfs \
    --cgroup-manager=cgroupfs --events-backend=file --runtime "$BIVY" "$@"
}

# options every container gets: no network, rlimits within what this host allows (the
# bounding set lacks CAP_SYS_RESOURCE), cgroups under this test's parent
PM_OPTS=()

pm_setup() {
  PM_OPTS=(--network=none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 --cgroup-parent "/$CG_PARENT")
  on_exit pm_teardown
  tar -C "$ROOTFS" -c . | pm import - localhost/bivy-test >/dev/null
}

pm_teardown() {
  pm rm -af -t 0 >/dev/null 2>&1 || true
  pm rmi -af >/dev/null 2>&1 || true
  # shm and other mounts podman made under our directories
  for m in $(awk -v t="$T/" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  rm -rf "$T/pr" "$T/prr" "$T/ptmp" 2>/dev/null || true
}

cid_pid() { pm inspect --format '{{.State.Pid}}' "$1"; }
pm_status() { pm inspect --format '{{.State.Status}}' "$1"; }
pm_status_is() { [ "$(pm_status "$1" 2>/dev/null)" = "$2" ]; }

test_podman_run_output_and_exit_code() {
  pm_setup
  out=$(pm run --rm "${PM_OPTS[@]}" localhost/bivy-test sh -c 'echo hello-from-podman; hostname')
  assert_eq "$(sed -n 1p <<<"$out")" hello-from-podman
  rc=0; pm run --rm "${PM_OPTS[@]}" localhost/bivy-test sh -c 'exit 3' || rc=$?
  assert_eq "$rc" 3
  # missing binary: podman reports the runtime's error (127 = command not found)
  rc=0; out=$(pm run --rm "${PM_OPTS[@]}" localhost/bivy-test no-such-cmd 2>&1) || rc=$?
  [ $rc -ne 0 ] || fail "missing binary ran: $out"
  assert_contains "$out" "no-such-cmd"
  assert_eq "$(pm ps -aq | wc -l)" 0 "--rm left containers"
}

test_podman_memory_limit() {
  pm_setup
  pm run -d --name m1 --memory 64m "${PM_OPTS[@]}" localhost/bivy-test sleep 1000 >/dev/null
  pid=$(cid_pid m1)
  cg=$(awk -F: '$2 == "memory" {print $3}' /proc/$pid/cgroup)
  [ -n "$cg" ] || cg=$(awk -F: '$1 == "0" {print $3}' /proc/$pid/cgroup)
  assert_contains "$cg" "$CG_PARENT" "container cgroup under --cgroup-parent"
  if [ -e /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
    assert_eq "$(cat "/sys/fs/cgroup/memory$cg/memory.limit_in_bytes")" 67108864
  else
    assert_eq "$(cat "/sys/fs/cgroup$cg/memory.max")" 67108864
  fi
  pm rm -f -t 0 m1 >/dev/null
}

test_podman_detached_exec_pause_stop_rm() {
  pm_setup
  pm run -d --name d1 "${PM_OPTS[@]}" localhost/bivy-test \
    sh -c 'trap "exit 0" TERM; while :; do sleep 0.1; done' >/dev/null
  assert_eq "$(pm_status d1)" running
  pid=$(cid_pid d1)
  [ -d "/proc/$pid" ] || fail "container init $pid not alive"
  # exec: output, exit status, same namespaces
  out=$(pm exec d1 sh -c 'echo exec-ok; readlink /proc/self/ns/pid')
  assert_eq "$(sed -n 1p <<<"$out")" exec-ok
  rc=0; pm exec d1 sh -c 'exit 5' || rc=$?
  assert_eq "$rc" 5
  # pause / unpause (the freezer)
  pm pause d1 >/dev/null
  assert_eq "$(pm_status d1)" paused
  # bivy freezes through the cgroup2 tree (pure v2, and hybrid hosts: /sys/fs/cgroup/unified)
  cg2=$(awk -F: '$1 == "0" {print $3}' /proc/$pid/cgroup)
  ff=/sys/fs/cgroup$cg2/cgroup.freeze
  is_v2 || ff=/sys/fs/cgroup/unified$cg2/cgroup.freeze
  assert_eq "$(cat "$ff")" 1 "$ff"
  pm unpause d1 >/dev/null
  assert_eq "$(pm_status d1)" running
  # stop: SIGTERM reaches the trap, exit status 0
  pm stop -t 20 d1 >/dev/null
  assert_eq "$(pm_status d1)" exited
  assert_eq "$(pm inspect --format '{{.State.ExitCode}}' d1)" 0
  pm rm d1 >/dev/null
  assert_eq "$(pm ps -aq | wc -l)" 0
}

test_podman_kill() {
  pm_setup
  pm run -d --name k1 "${PM_OPTS[@]}" localhost/bivy-test sleep 1000 >/dev/null
  pm kill -s KILL k1 >/dev/null
  rc=$(pm wait k1)
  assert_eq "$rc" 137
  pm rm k1 >/dev/null
  # force-removal of a running container
  pm run -d --name k2 "${PM_OPTS[@]}" localhost/bivy-test sleep 1000 >/dev/null
  pid=$(cid_pid k2)
  pm rm -f -t 0 k2 >/dev/null
  [ ! -e "/proc/$pid/stat" ] || [ "$(awk '{print $3}' /proc/$pid/stat)" = Z ] || fail "k2 still running"
  assert_eq "$(pm ps -aq | wc -l)" 0
}
