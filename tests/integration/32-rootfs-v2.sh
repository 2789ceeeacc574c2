# The rootfs essentials in one container run, also on the pure cgroup v2 tier (kernel 6.1 in
# the VM: openat2, fsopen/fsmount, open_tree, mount_setattr, move_mount must all work there).
# Lean on purpose: the full set is in 30-rootfs.sh and 31-hardening.sh (host tier).
TIERS="host v2"

test_v2_rootfs_essentials() {
  local canary="bivy-escape-$$-$RANDOM"
  mkbundle "$T/c" sh -c 'cat /proc/self/mountinfo; grep ^Cap /proc/self/status; stat -c "%n %t:%T" /dev/null /dev/zero; echo "timer_list=$(wc -c </proc/timer_list)"'
  cp -a "$ROOTFS" "$T/rootfs"
  ln -s /etc "$T/rootfs/evil"
  on_exit "rmdir /etc/$canary 2>/dev/null"
  jqi "$T/c/config.json" --arg r "$T/rootfs" --arg c "$canary" '.root.path = $r
      | .mounts += [{"destination":("/evil/" + $c),"type":"tmpfs","source":"tmpfs"}]'
  out=$(bivy run -b "$T/c" c)
  opts() { awk -v m="$1" '$5 == m {print $6 " " $(NF-2)}' <<<"$out" | tail -1; }
  assert_contains "$(opts /)" "ro,"
  assert_contains "$(opts /sys/fs/cgroup)" "ro,"
  if [ "$(stat -fc %T /sys/fs/cgroup)" = tmpfs ]; then
    assert_contains "$(opts /sys/fs/cgroup/unified)" " cgroup2"
  else
    assert_contains "$(opts /sys/fs/cgroup)" " cgroup2"
  fi
  assert_contains "$(opts /proc/sys)" "ro,"
  assert_contains "$(opts /etc/$canary)" " tmpfs"
  [ ! -e "/etc/$canary" ] || fail "mount point created on the host's /etc"
  assert_contains "$out" "/dev/null 1:3"
  assert_contains "$out" "/dev/zero 1:5"
  assert_contains "$out" "timer_list=0"
  assert_contains "$out" "CapBnd:	0000000020000420"
}
