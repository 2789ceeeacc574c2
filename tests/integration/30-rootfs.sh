# The rootfs plan: mounts and their flags, devices, /dev symlinks, masked and read-only paths,
# root.readonly, sysctl (with the procfs check), pivot_root/--no-pivot, the cgroup mount and
# the symlink-escape regression (mount destinations resolved inside the rootfs).
#
# Containers run through run_ctr: `bivy run`, or with ROOTFS_RUNNER=helper
# tests/helpers/rootfs-run, a mini runner that drives the same runtime/linux.h functions
# without the lifecycle code (to tell a rootfs bug from a lifecycle one).
TIERS="host v2"


# a private copy of the busybox rootfs (tests that plant things in the image)
own_rootfs() {
  cp -a "$ROOTFS" "$T/rootfs"
  jqi "$1/config.json" --arg r "$T/rootfs" '.root.path = $r'
}

test_default_mounts_and_flags() {
  mkbundle "$T/c1" cat /proc/self/mountinfo
  out=$(run_ctr "$T/c1")
  # mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS ... - FSTYPE SOURCE SUPEROPTS
  opts() { awk -v m="$1" '$5 == m {print $6 " " $(NF-2)}' <<<"$out" | tail -1; }
  assert_contains "$(opts /)" "ro," "root.readonly"
  assert_contains "$(opts /proc)" " proc"
  assert_eq "$(opts /dev | cut -d' ' -f2)" "tmpfs"
  assert_contains "$(opts /dev)" "nosuid"
  assert_contains "$(opts /dev/pts)" "noexec"
  assert_contains "$(opts /dev/shm)" "nodev"
  assert_contains "$(opts /dev/shm)" "noexec"
  assert_contains "$(opts /dev/mqueue)" " mqueue"
  assert_contains "$(opts /sys)" "ro,"
  assert_contains "$(opts /sys)" " sysfs"
  assert_contains "$(opts /sys/fs/cgroup)" "ro,"
  if [ "$(stat -fc %T /sys/fs/cgroup)" = tmpfs ]; then # v1/hybrid host: the v1 layout
    assert_contains "$(opts /sys/fs/cgroup)" " tmpfs"
    assert_contains "$(opts /sys/fs/cgroup/memory)" " cgroup"
    assert_contains "$(opts /sys/fs/cgroup/unified)" " cgroup2"
  else
    assert_contains "$(opts /sys/fs/cgroup)" " cgroup2"
  fi
  # the host's mounts are gone after pivot_root
  [ -z "$(awk '$5 ~ "^/(work|home|run|boot)"' <<<"$out")" ] || fail "host mounts visible: $out"
  [ "$(awk '$5 == "/" ' <<<"$out" | wc -l)" = 1 ] || fail "more than one / mount: $out"
}

test_tmpfs_options() {
  mkbundle "$T/c2" sh -c 'grep " /scratch " /proc/mounts; stat -c %a /scratch'
  jqi "$T/c2/config.json" '.mounts += [{"destination":"/scratch","type":"tmpfs","source":"tmpfs",
      "options":["noexec","nosuid","size=1m","mode=710"]}]'
  out=$(run_ctr "$T/c2")
  assert_contains "$out" "tmpfs /scratch tmpfs"
  assert_contains "$out" "size=1024k"
  assert_contains "$out" "noexec"
  assert_contains "$out" "nosuid"
  assert_eq "$(tail -1 <<<"$out")" "710" "tmpfs mode"
}

test_bind_ro_and_rw() {
  mkdir -p "$T/data" "$T/rw"
  echo hello >"$T/data/file"
  mkbundle "$T/c3" sh -c 'cat /data/file; grep " /data " /proc/mounts; if echo x >/data/file; then echo WROTE; fi; echo y >/rw/new'
  jqi "$T/c3/config.json" --arg d "$T/data" --arg w "$T/rw" '.mounts += [
      {"destination":"/data","type":"bind","source":$d,"options":["rbind","ro","nosuid","nodev"]},
      {"destination":"/rw","type":"bind","source":$w,"options":["bind","rw"]}]'
  out=$(run_ctr "$T/c3" 2>&1)
  assert_contains "$out" "hello"
  assert_contains "$out" " /data "
  grep -q ' /data [a-z0-9]* ro,nosuid,nodev' <<<"$out" || fail "bind flags: $out"
  assert_not_contains "$out" "WROTE" "write to a read-only bind"
  assert_eq "$(cat "$T/data/file")" "hello" "host file changed"
  assert_eq "$(cat "$T/rw/new")" "y" "rw bind"
}

test_devices() {
  mkbundle "$T/c4" sh -c 'for d in null zero full random urandom tty fuse; do echo "$d $(stat -c "%F %t:%T %a" /dev/$d)"; done'
  jqi "$T/c4/config.json" '.linux.devices = [{"path":"/dev/fuse","type":"c","major":10,"minor":229,
      "fileMode":384,"uid":0,"gid":0}]'
  out=$(run_ctr "$T/c4")
  assert_contains "$out" "null character special file 1:3 666"
  assert_contains "$out" "zero character special file 1:5 666"
  assert_contains "$out" "full character special file 1:7 666"
  assert_contains "$out" "random character special file 1:8 666"
  assert_contains "$out" "urandom character special file 1:9 666"
  assert_contains "$out" "tty character special file 5:0 666"
  assert_contains "$out" "fuse character special file a:e5 600"
  # the devices work: /dev/zero reads zeros, /dev/full refuses writes
  mkbundle "$T/c4b" sh -c 'head -c 4 /dev/zero | od -An -tx1; echo x >/dev/full || echo FULL'
  out=$(run_ctr "$T/c4b" 2>&1)
  assert_contains "$out" "00 00 00 00"
  assert_contains "$out" "FULL"
}

test_dev_symlinks() {
  mkbundle "$T/c5" sh -c 'for l in fd stdin stdout stderr core ptmx; do echo "$l -> $(readlink /dev/$l)"; done'
  out=$(run_ctr "$T/c5")
  assert_contains "$out" "fd -> /proc/self/fd"
  assert_contains "$out" "stdin -> /proc/self/fd/0"
  assert_contains "$out" "stdout -> /proc/self/fd/1"
  assert_contains "$out" "stderr -> /proc/self/fd/2"
  assert_contains "$out" "core -> /proc/kcore"
  assert_contains "$out" "ptmx -> pts/ptmx"
}

test_masked_paths() {
  [ "$(head -c 10 /proc/timer_list | wc -c)" = 10 ] || fail "host /proc/timer_list is empty: test cannot tell"
  [ -n "$(ls -A /sys/firmware)" ] || fail "host /sys/firmware is empty: test cannot tell"
  mkbundle "$T/c6" sh -c 'echo "timer_list=$(wc -c </proc/timer_list)"; echo "firmware=$(ls -A /sys/firmware | wc -l)"; if touch /sys/firmware/x 2>/dev/null; then echo TOUCHED; fi'
  jqi "$T/c6/config.json" '.linux.maskedPaths += ["/does/not/exist"]'
  out=$(run_ctr "$T/c6")
  assert_contains "$out" "timer_list=0"
  assert_contains "$out" "firmware=0"
  assert_not_contains "$out" "TOUCHED"
}

test_readonly_paths() {
  mkbundle "$T/c7" sh -c 'grep " /proc/sys " /proc/mounts; if echo 1 >/proc/sys/kernel/shmmax; then echo WROTE; fi'
  out=$(run_ctr "$T/c7" 2>&1)
  grep -q '^proc /proc/sys proc ro' <<<"$out" || fail "/proc/sys not read-only: $out"
  assert_contains "$out" "Read-only file system"
  assert_not_contains "$out" "WROTE"
}

test_root_readonly_and_writable() {
  mkbundle "$T/c8" sh -c 'touch /tmp/x && echo OK'
  expect_fail "Read-only file system" run_ctr "$T/c8"
  own_rootfs "$T/c8"
  jqi "$T/c8/config.json" '.root.readonly = false'
  assert_eq "$(run_ctr "$T/c8")" "OK"
  [ -e "$T/rootfs/tmp/x" ] || fail "write did not land in the rootfs"
}

# CVE-2021-30465 class: a symlink in the image must not redirect a mount destination to the host
test_symlink_escape_stays_in_rootfs() {
  local canary="bivy-escape-$$-$RANDOM"
  [ ! -e "/etc/$canary" ] || fail "canary exists"
  mkbundle "$T/c9" sh -c "grep -E ' /(etc|tmp|var)/$canary' /proc/mounts"
  own_rootfs "$T/c9"
  ln -s /etc "$T/rootfs/evil"
  ln -s ../../../../../../../../tmp "$T/rootfs/evil2"
  jqi "$T/c9/config.json" --arg c "$canary" '.mounts += [
      {"destination":("/evil/" + $c),"type":"tmpfs","source":"tmpfs"},
      {"destination":("/evil2/" + $c),"type":"tmpfs","source":"tmpfs"},
      {"destination":("/../../../../var/" + $c),"type":"tmpfs","source":"tmpfs"}]'
  on_exit "rmdir /etc/$canary /tmp/$canary /var/$canary 2>/dev/null"
  out=$(run_ctr "$T/c9")
  assert_contains "$out" "/etc/$canary tmpfs"
  assert_contains "$out" "/tmp/$canary tmpfs"
  [ ! -e "/etc/$canary" ] || fail "mount point created on the host's /etc"
  [ ! -e "/tmp/$canary" ] || fail "mount point created on the host's /tmp"
  [ -d "$T/rootfs/etc/$canary" ] || fail "mount point not created inside the rootfs"
  [ -d "$T/rootfs/tmp/$canary" ] || fail "mount point not created inside the rootfs (relative link)"
  assert_contains "$out" "/var/$canary tmpfs"
  [ ! -e "/var/$canary" ] || fail "mount point created on the host's /var (..)"
  [ -d "$T/rootfs/var/$canary" ] || fail "mount point not created inside the rootfs (..)"
}

test_sysctl_in_container_namespaces() {
  local host_fwd host_shm
  host_fwd=$(cat /proc/sys/net/ipv4/ip_forward)
  host_shm=$(cat /proc/sys/kernel/shmmax)
  local want_fwd=$((1 - host_fwd))
  mkbundle "$T/c10" sh -c 'cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax'
  jqi "$T/c10/config.json" --arg f "$want_fwd" '.linux.sysctl = {"net.ipv4.ip_forward": $f, "kernel.shmmax": "123456789"}'
  out=$(run_ctr "$T/c10")
  assert_eq "$out" "$want_fwd
123456789"
  assert_eq "$(cat /proc/sys/net/ipv4/ip_forward)" "$host_fwd" "host ip_forward changed"
  assert_eq "$(cat /proc/sys/kernel/shmmax)" "$host_shm" "host shmmax changed"
}

test_sysctl_not_namespaced_refused() {
  mkbundle "$T/c11" true
  jqi "$T/c11/config.json" '.linux.sysctl = {"kernel.pid_max": "4000"}'
  expect_fail "kernel.pid_max" run_ctr "$T/c11"
  mkbundle "$T/c11b" true
  jqi "$T/c11b/config.json" '.linux.sysctl = {"net.ipv4.ip_forward": "1"} | .linux.namespaces |= map(select(.type != "network"))'
  expect_fail "net.ipv4.ip_forward" run_ctr "$T/c11b"
}

# CVE-2019-16884 class: an image that fakes /proc/sys must not receive sysctl writes
test_sysctl_requires_real_procfs() {
  mkbundle "$T/c12" true
  own_rootfs "$T/c12"
  mkdir -p "$T/rootfs/proc/sys/net/ipv4"
  echo 0 >"$T/rootfs/proc/sys/net/ipv4/ip_forward"
  jqi "$T/c12/config.json" '.linux.sysctl = {"net.ipv4.ip_forward": "1"} | .mounts |= map(select(.destination != "/proc"))
      | .linux.readonlyPaths = [] | .linux.maskedPaths = []'
  expect_fail "procfs" run_ctr "$T/c12"
  assert_eq "$(cat "$T/rootfs/proc/sys/net/ipv4/ip_forward")" "0" "fake sysctl file written"
}

test_no_pivot() {
  mkbundle "$T/c13" sh -c 'ls /; cat /proc/self/mountinfo'
  out=$(run_ctr "$T/c13" --no-pivot)
  assert_contains "$out" "linuxrc"
  grep -q ' / /proc rw,.* - proc ' <<<"$out" || fail "no /proc: $out"
}

test_cgroup_mount_without_cgroupns_is_readonly_bind() {
  mkbundle "$T/c14" sh -c 'stat -f -c %T /sys/fs/cgroup; grep " /sys/fs/cgroup " /proc/mounts; mkdir /sys/fs/cgroup/x && echo MKDIR'
  jqi "$T/c14/config.json" '.linux.namespaces |= map(select(.type != "cgroup"))'
  out=$(run_ctr "$T/c14" 2>&1 || true)
  assert_contains "$out" "cgroup2"
  grep -q ' /sys/fs/cgroup cgroup2 ro' <<<"$out" || fail "not read-only: $out"
  assert_not_contains "$out" "MKDIR"
}

# In a user namespace mknod is not permitted: the host's nodes are bind-mounted instead
test_userns_devices_are_host_binds() {
  mkbundle "$T/c15" sh -c 'cat /proc/self/uid_map; stat -c "%n %t:%T" /dev/null /dev/zero /dev/tty; head -c 2 /dev/zero | od -An -tx1; echo x >/dev/null && echo NULL-OK; grep " /dev/null " /proc/self/mountinfo'
  # the container's root (host uid 100000) must be able to reach its rootfs: not under $T (0700)
  local d
  d=$(mktemp -d /tmp/bivy-userns.XXXXXX)
  on_exit "rm -rf '$d'"
  chmod 755 "$d"
  cp -a "$ROOTFS" "$d/rootfs"
  chown -R 100000:100000 "$d/rootfs"
  jqi "$T/c15/config.json" --arg r "$d/rootfs" '.root.path = $r'
  jqi "$T/c15/config.json" '.linux.namespaces += [{"type":"user"}]
      | .linux.uidMappings = [{"containerID":0,"hostID":100000,"size":65536}]
      | .linux.gidMappings = [{"containerID":0,"hostID":100000,"size":65536}]'
  out=$(run_ctr "$T/c15")
  grep -Eq '^ +0 +100000 +65536$' <<<"$out" || fail "not in the user namespace: $out"
  assert_contains "$out" "/dev/null 1:3"
  assert_contains "$out" "/dev/zero 1:5"
  assert_contains "$out" "/dev/tty 5:0"
  assert_contains "$out" " 00 00"
  assert_contains "$out" "NULL-OK"
  assert_contains "$out" "devtmpfs" "/dev/null is not a bind of the host's node"
  # without its own network namespace it may not mount sysfs: /sys is a read-only host bind
  jqi "$T/c15/config.json" '.linux.namespaces |= map(select(.type != "network"))
      | .process.args = ["sh", "-c", "grep \" /sys \" /proc/self/mountinfo; touch /sys/x || echo RO"]'
  out=$(run_ctr "$T/c15" 2>&1)
  grep -q ' /sys ro,' <<<"$out" || fail "/sys: $out"
  assert_contains "$out" "RO"
}

test_rootfs_propagation() {
  mkbundle "$T/c16" sh -c 'awk "\$5 == \"/\"" /proc/self/mountinfo'
  out=$(run_ctr "$T/c16")
  assert_not_contains "$out" "shared:" "default rootfs propagation must be private"
  jqi "$T/c16/config.json" '.linux.rootfsPropagation = "rshared"'
  out=$(run_ctr "$T/c16")
  assert_contains "$out" "shared:" "rootfsPropagation rshared"
}

test_bad_mount_option_names_the_mount() {
  mkbundle "$T/c17" true
  jqi "$T/c17/config.json" '.mounts += [{"destination":"/x","type":"tmpfs","source":"tmpfs","options":["size=abc"]}]'
  expect_fail "mounts[7] /x: option \"size=abc\" (tmpfs: Bad value for 'size')" run_ctr "$T/c17"
  # and nothing is left behind
  [ -z "$(bivy list -q 2>/dev/null)" ] || fail "container left after the failed run"
}

# type "cgroup" with a cgroup namespace: the host's layout seen from the container's own
# cgroup (v1 hierarchies + unified on a hybrid host, cgroup2 on a unified one), read-only
test_cgroup_mount_shows_own_cgroup() {
  mkbundle "$T/c18" sh -c 'if [ -d /sys/fs/cgroup/memory ]; then cat /sys/fs/cgroup/memory/memory.limit_in_bytes; ls /sys/fs/cgroup; else cat /sys/fs/cgroup/memory.max; fi; cat /proc/self/cgroup; mkdir /sys/fs/cgroup/x 2>&1 || true'
  jqi "$T/c18/config.json" '.linux.resources.memory.limit = 67108864'
  out=$(run_with bivy "$T/c18") # cgroups are the lifecycle's: not done by the helper
  assert_contains "$out" "67108864" "the container's own memory limit"
  assert_contains "$out" "Read-only file system"
  if [ "$(stat -fc %T /sys/fs/cgroup)" = tmpfs ]; then
    for h in cpu memory pids unified; do grep -qx "$h" <<<"$out" || fail "no /sys/fs/cgroup/$h: $out"; done
    ! grep -qx systemd <<<"$out" || fail "a named hierarchy the container is not confined in: $out"
  fi
  # each hierarchy is rooted at the container's cgroup
  [ -z "$(grep -E '^[0-9]+:[^:]*:/.+' <<<"$out")" ] || fail "cgroup paths not namespaced: $out"
}
