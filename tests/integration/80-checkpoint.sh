# Checkpoint/restore through CRIU: bivy checkpoint / bivy restore.
# On the development host CRIU 3.17 fails its own `criu check` (vDSO), so there both verbs
# must fail fast and touch nothing; the real dump/restore runs in the cgroup v2 VM (Debian
# 6.1 kernel), where `criu check` passes. Error paths that need a CRIU run use a stand-in
# criu ($BIVY_CRIU) so they are checked in both tiers.
TIERS="host v2"

criu_works() { criu check >/dev/null 2>&1; }

# ckpt_bundle DIR: a counter container. Its program counts in memory, writes the count into
# /dev/shm/count (a tmpfs CRIU dumps), appends it to /data/log (a bind mount of
# $T/data-NAME: outside the checkpoint, so the host sees every value ever written) and prints
# it on stdout.
ckpt_bundle() {
  local dir=$1 name
  name=$(basename "$1")
  mkdir -p "$T/data-$name"
  mkbundle "$dir" sh -c 'i=0; while :; do i=$((i+1)); echo $i > /dev/shm/count; echo $i >> /data/log; echo $i; sleep 0.2; done'
  jqi "$dir/config.json" --arg src "$T/data-$name" \
    '.mounts += [{"destination": "/data", "type": "bind", "source": $src, "options": ["rbind", "rw"]}]'
}
lines_of() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
has_lines() { [ "$(lines_of "$1")" -ge "$2" ]; }
status_is() { [ "$(bivy state "$1" 2>/dev/null | jq -r .status)" = "$2" ]; }
proc_gone() { [ ! -e "/proc/$1/stat" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
cg_dirs() { ls -d /sys/fs/cgroup/*/"$CG_PARENT/$1" /sys/fs/cgroup/"$CG_PARENT/$1" 2>/dev/null || true; }
# nothing of container ID: no state dir, no cgroup, no mount of its rootfs view
assert_no_trace() {
  [ ! -e "$T/root/$1" ] || fail "state dir of $1 left behind: $(ls -la "$T/root/$1")"
  [ -z "$(cg_dirs "$1")" ] || fail "cgroup of $1 left behind: $(cg_dirs "$1")"
  ! grep -q " $T/root/$1/" /proc/self/mountinfo || fail "mount left behind under $T/root/$1"
}
# a directory holding what bivy restore checks before it runs criu (not a real checkpoint)
fake_images() {
  mkdir -p "$1"
  : >"$1/inventory.img"
  echo '{"id": "x", "stdio": [null, null, null], "bindMounts": ["/data"], "shellJob": false}' >"$1/bivy-checkpoint.json"
}
# a stand-in criu: `check` passes (or fails with CHECK_ERROR), dump/restore leave junk and an
# error in their log and fail, as a real CRIU failure does
fake_criu() {
  cat >"$T/criu" <<EOF
#!/bin/bash
cmd=\$1; shift
img= work=
while [ \$# -gt 0 ]; do
  case \$1 in --images-dir) img=\$2; shift ;; --work-dir) work=\$2; shift ;; esac
  shift
done
case \$cmd in
  check) if [ -n "${1:-}" ]; then echo "Error (fake/vdso.c:1): ${1:-}" >&2; exit 1; fi; echo "Looks good."; exit 0 ;;
  dump) echo junk >"\$img/pages-1.img"; echo "(00.001) Error (fake/dump.c:7): dump refused" >"\$work/dump.log"; exit 1 ;;
  restore) echo "(00.001) Error (fake/restore.c:9): restore refused" >"\$work/restore.log"; exit 1 ;;
esac
exit 2
EOF
  chmod +x "$T/criu"
  export BIVY_CRIU=$T/criu
}

test_checkpoint_usage_errors() {
  assert_contains "$(bivy checkpoint --help | head -1)" "Usage: bivy checkpoint"
  assert_contains "$(bivy restore --help | head -1)" "Usage: bivy restore"
  expect_fail "checkpoint: --image-path DIR is required" bivy checkpoint c1
  expect_fail "checkpoint: unknown option --bogus" bivy checkpoint --bogus --image-path "$T/img" c1
  expect_fail "checkpoint: --image-path: needs a value" bivy checkpoint --image-path
  expect_fail "checkpoint: --format: unknown format \"yaml\"" bivy checkpoint --format yaml --image-path "$T/img" c1
  expect_fail "checkpoint: expected exactly one container ID" bivy checkpoint --image-path "$T/img"
  expect_fail "restore: --image-path DIR is required" bivy restore -b "$T" r1
  expect_fail "restore: -b: needs a value" bivy restore -b
  expect_fail "restore: unknown option --leave-running" bivy restore --leave-running --image-path "$T/img" r1
  expect_fail "checkpoint c1: container c1 does not exist" bivy checkpoint --image-path "$T/img" c1
  [ ! -e "$T/img" ] || fail "image dir created for a missing container"
  # restore: the image directory must hold a checkpoint; nothing is created otherwise
  mkbundle "$T/r1" sleep 1000
  expect_fail "--image-path $T/nope: No such file or directory" bivy restore --image-path "$T/nope" -b "$T/r1" r1
  mkdir "$T/empty"
  expect_fail "--image-path $T/empty: not a checkpoint (no inventory.img)" bivy restore --image-path "$T/empty" -b "$T/r1" r1
  expect_fail "--bundle $T/nobundle" bivy restore --image-path "$T/empty" -b "$T/nobundle" r1
  assert_no_trace r1
}

test_checkpoint_needs_a_running_container() {
  mkbundle "$T/c1" sleep 1000
  bivy create -b "$T/c1" c1
  expect_fail "checkpoint c1: container c1 is created, not running" bivy checkpoint --image-path "$T/img" c1
  bivy kill c1 KILL
  wait_for status_is c1 stopped
  expect_fail "checkpoint c1: container c1 is stopped, not running" bivy checkpoint --image-path "$T/img" c1
  [ ! -e "$T/img" ] || fail "image dir created for a container that is not running"
}

# The development host: `criu check` fails (vDSO), so checkpoint and restore stop before
# touching anything, with CRIU's first error line. Where CRIU works (the VM) a stand-in
# criu whose check fails shows the same behaviour.
test_checkpoint_fails_fast_when_criu_check_fails() {
  ckpt_bundle "$T/c1"
  bivy run -d -b "$T/c1" c1 </dev/null >/dev/null 2>&1
  pid=$(pid_of c1)
  if criu_works; then
    fake_criu "no vDSO here"
    want="criu check: Error (fake/vdso.c:1): no vDSO here"
  else
    want="criu check: $( (criu check 2>&1 || true) | grep -m1 '^Error')"
  fi
  expect_fail "bivy: checkpoint c1: CRIU cannot checkpoint on this kernel: $want" bivy checkpoint --image-path "$T/img" c1
  [ ! -e "$T/img" ] || fail "image dir created: $(ls -la "$T/img")"
  # second time from the per-boot cache, same answer; a given empty dir stays empty
  [ -f "$T/root/#criu-check" ] || fail "criu check result not cached"
  mkdir "$T/img2"
  expect_fail "CRIU cannot checkpoint on this kernel: $want" bivy checkpoint --leave-running --image-path "$T/img2" c1
  assert_eq "$(ls -A "$T/img2")" "" "files left in the image dir"
  # the container is untouched: same init, still counting
  assert_eq "$(status_of c1)" running
  assert_eq "$(pid_of c1)" "$pid"
  n=$(lines_of "$T/data-c1/log")
  wait_for has_lines "$T/data-c1/log" $((n + 2))
  # restore fails as fast, leaving no container behind
  fake_images "$T/fake"
  mkbundle "$T/r1" sleep 1000
  jqi "$T/r1/config.json" --arg src "$T" '.mounts += [{"destination": "/data", "type": "bind", "source": $src, "options": ["rbind"]}]'
  expect_fail "bivy: restore r1: CRIU cannot checkpoint on this kernel: $want" bivy restore --image-path "$T/fake" -b "$T/r1" r1
  assert_no_trace r1
}

test_checkpoint_failure_leaves_the_container_running() {
  fake_criu
  ckpt_bundle "$T/c1"
  bivy run -d -b "$T/c1" c1 </dev/null >/dev/null 2>&1
  pid=$(pid_of c1)
  # bad image directories are refused before CRIU runs
  echo x >"$T/file"
  expect_fail "checkpoint c1: --image-path $T/file: not a directory" bivy checkpoint --image-path "$T/file" c1
  mkdir "$T/full" && echo x >"$T/full/old.img"
  expect_fail "--image-path $T/full: not empty" bivy checkpoint --image-path "$T/full" c1
  assert_eq "$(ls -A "$T/full")" "old.img" "a non-empty image dir was changed"
  expect_fail "--image-path $T/no/such: No such file or directory" bivy checkpoint --image-path "$T/no/such" c1
  # a failed dump: CRIU's error in the message, its log kept in the state dir, no partial files
  expect_fail "checkpoint c1: criu dump: criu exited with status 1: Error (fake/dump.c:7): dump refused (log: $T/root/c1/criu-dump.log)" \
    bivy checkpoint --image-path "$T/img" c1
  [ ! -e "$T/img" ] || fail "image dir bivy created was left: $(ls -la "$T/img")"
  grep -q "dump refused" "$T/root/c1/criu-dump.log" || fail "criu log not kept"
  mkdir "$T/img2" "$T/work"
  expect_fail "criu dump: criu exited with status 1" bivy checkpoint --image-path "$T/img2" --work-path "$T/work" c1
  assert_eq "$(ls -A "$T/img2")" "" "partial files left in the image dir"
  assert_eq "$(status_of c1)" running
  assert_eq "$(pid_of c1)" "$pid"
  # the init leads its own session (CRIU needs the session inside the pid namespace)
  pid_ns_sid=$(awk '{print $6}' "/proc/$pid/stat")
  assert_eq "$pid_ns_sid" "$pid" "session of the init"
}

test_restore_failure_leaves_nothing() {
  fake_criu
  fake_images "$T/fake"
  ckpt_bundle "$T/c1"
  bivy run -d -b "$T/c1" c1 </dev/null >/dev/null 2>&1
  pid=$(pid_of c1)
  # an ID in use is refused and the running container is untouched
  expect_fail "restore c1: container c1 already exists" bivy restore --image-path "$T/fake" -b "$T/c1" c1
  assert_eq "$(pid_of c1)" "$pid"
  assert_eq "$(status_of c1)" running
  # a checkpoint with a bind mount the bundle lacks
  mkbundle "$T/r1" sleep 1000
  expect_fail "the checkpoint has a bind mount on /data, the bundle does not" bivy restore --image-path "$T/fake" -b "$T/r1" r1
  assert_no_trace r1
  # CRIU fails: no state, no cgroup, no rootfs mount left
  ckpt_bundle "$T/r2"
  expect_fail "restore r2: criu restore: criu exited with status 1: Error (fake/restore.c:9): restore refused" \
    bivy restore --image-path "$T/fake" -b "$T/r2" r2
  assert_no_trace r2
  grep -q "restore refused" "$T/fake/restore.log" || fail "no criu log in the image dir"
}

# The real thing (VM: CRIU works on its 6.1 kernel; the host's CRIU cannot, tested above).
test_checkpoint_restore_keeps_the_count() {
  in_vm || return 0
  ckpt_bundle "$T/c1"
  # stdout is a pipe to the caller: outside the container, handed over at restore
  bivy run -d -b "$T/c1" c1 </dev/null 2>/dev/null | cat >"$T/c1.out" &
  wait_for status_is c1 running
  pid=$(pid_of c1)
  wait_for has_lines "$T/data-c1/log" 3
  out=$(bivy checkpoint --format json --image-path "$T/img" c1)
  assert_eq "$(jq -r .status <<<"$out")" stopped
  assert_eq "$(jq -r .leftRunning <<<"$out")" false
  assert_eq "$(jq -r .imagePath <<<"$out")" "$T/img"
  assert_eq "$(status_of c1)" stopped
  proc_gone "$pid" || fail "init $pid still alive after checkpoint"
  [ -f "$T/img/inventory.img" ] || fail "no CRIU images in $T/img"
  n=$(lines_of "$T/data-c1/log")
  assert_eq "$(tail -1 "$T/data-c1/log")" "$n" "the counter wrote 1..n"
  bivy delete c1
  [ -z "$(cg_dirs c1)" ] || fail "cgroup left after delete"

  # restore's stdout (another pipe) becomes the restored program's
  { bivy restore -d -b "$T/c1" --image-path "$T/img" --pid-file "$T/rpid" c1 </dev/null 2>"$T/rst.err" ||
    echo "restore failed: $(cat "$T/rst.err"); $(grep Error "$T/img/restore.log" | head -5)" >"$T/rst.fail"; } | cat >"$T/r.out" &
  wait_for test -e "$T/rpid" -o -e "$T/rst.fail"
  [ ! -e "$T/rst.fail" ] || fail "$(cat "$T/rst.fail")"
  rpid=$(pid_of c1)
  assert_eq "$(cat "$T/rpid")" "$rpid" "pid-file"
  assert_eq "$(status_of c1)" running
  bivy list --format json | jq -e --argjson p "$rpid" '.[] | select(.id == "c1" and .status == "running" and .pid == $p)' >/dev/null ||
    fail "restored container not listed running: $(bivy list --format json)"
  # the count continues from the checkpointed value, not from 1
  wait_for has_lines "$T/data-c1/log" $((n + 2))
  assert_eq "$(sed -n "$((n + 1))p" "$T/data-c1/log")" "$((n + 1))" "first value written after restore"
  wait_for has_lines "$T/r.out" 1
  assert_eq "$(head -1 "$T/r.out")" "$((n + 1))" "first value printed after restore, on restore's stdout"
  [ "$(tail -1 "$T/c1.out")" -le "$n" ] || fail "the original stdout pipe got output after the checkpoint"
  # the tmpfs came back with the process: its count is past the checkpointed one
  [ "$(cat "/proc/$rpid/root/dev/shm/count")" -gt "$n" ] || fail "tmpfs count did not survive"
  # the restored init is in the bundle's cgroup
  grep -qx "$rpid" "$(cgfile c1 cgroup.procs)" || fail "restored init not in $(cgfile c1 cgroup.procs): $(cat "/proc/$rpid/cgroup")"
  bivy kill c1 KILL
  wait_for status_is c1 stopped
  bivy delete c1
  assert_no_trace c1
}

test_checkpoint_leave_running() {
  in_vm || return 0
  ckpt_bundle "$T/c1"
  bivy run -d -b "$T/c1" c1 </dev/null >/dev/null 2>&1
  pid=$(pid_of c1)
  wait_for has_lines "$T/data-c1/log" 3
  bivy checkpoint --leave-running --image-path "$T/img" --work-path "$T/work" c1
  [ -f "$T/work/dump.log" ] || fail "no CRIU log in --work-path"
  [ ! -e "$T/img/dump.log" ] || fail "CRIU log in the image dir despite --work-path"
  assert_eq "$(status_of c1)" running
  assert_eq "$(pid_of c1)" "$pid"
  n=$(lines_of "$T/data-c1/log")
  wait_for has_lines "$T/data-c1/log" $((n + 3))
  # the checkpoint restores beside the original, as another container with its own /data:
  # its first value continues from the one at checkpoint time. In the foreground, restore
  # waits for the restored init, exits with its status and deletes the container.
  ckpt_bundle "$T/r1"
  bivy restore --format json -b "$T/r1" --image-path "$T/img" r1 </dev/null >"$T/r1.out" 2>"$T/rst.err" &
  rp=$!
  wait_for has_lines "$T/data-r1/log" 1
  first=$(head -1 "$T/data-r1/log")
  [ "$first" -gt 1 ] && [ "$first" -le $((n + 1)) ] || fail "restored counter started at $first (checkpointed at <= $n)"
  # the original's stdout was the host's /dev/null: reopened as such, the counter does not
  # print on restore's stdout, which has only the JSON line
  wait_for has_lines "$T/data-r1/log" 4
  assert_eq "$(cat "$T/r1.out" | jq -r '.id + " " + .status + " " + (.pid | tostring)')" "r1 running $(pid_of r1)"
  assert_eq "$(readlink "/proc/$(pid_of r1)/fd/1")" /dev/null "restored stdout"
  assert_eq "$(status_of c1)" running
  assert_eq "$(status_of r1)" running
  bivy kill r1 KILL
  rc=0
  wait $rp || rc=$?
  assert_eq "$rc" 137 "foreground restore exit status ($(cat "$T/rst.err"))"
  assert_no_trace r1
  assert_eq "$(status_of c1)" running
  bivy delete -f c1
  assert_no_trace c1
}
