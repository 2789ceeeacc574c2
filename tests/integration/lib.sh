# Helpers for integration tests (sourced by tests/integration/run inside each test's bash).
# Available: $BIVY $BIVYD $ROOTFS $REPO $BUILD $HELPERS $TIER $T (per-test temp dir).

# bivy with this test's own state root
bivy() { "$BIVY" --root "$T/root" "$@"; }

it_setup() {
  mkdir -p "$T/root"
  # a per-test cgroup parent, removed at teardown (see cgpath)
  export CG_PARENT="bivytest-$$-$RANDOM"
}

it_teardown() {
  local rc=$?
  # force-delete whatever this test left in its own state root
  if [ -d "$T/root" ]; then
    for id in $("$BIVY" --root "$T/root" list -q 2>/dev/null); do
      "$BIVY" --root "$T/root" delete -f "$id" >/dev/null 2>&1 || true
    done
  fi
  # remove the test's cgroup parents (deepest first); they are ours by name
  local d
  for d in $(ls -d /sys/fs/cgroup/*/"$CG_PARENT" /sys/fs/cgroup/"$CG_PARENT" 2>/dev/null); do
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  [ -n "${IT_CLEANUP:-}" ] && eval "$IT_CLEANUP" || true
  return $rc
}

# Add a cleanup command run at teardown.
on_exit() { IT_CLEANUP="${IT_CLEANUP:-}${IT_CLEANUP:+; }$*"; }

# cgroupsPath for container ID under this test's parent: /bivytest-PID-N/ID
cgpath() { echo "/$CG_PARENT/$1"; }

# mkbundle DIR [CMD ARGS...]: a bundle from `bivy spec` with root.path = the busybox rootfs
# (absolute) and process.args = CMD (default: sh). terminal is off. The cgroup is placed
# under this test's parent. Edit further with jqi.
mkbundle() {
  local dir=$1; shift
  mkdir -p "$dir"
  (cd "$dir" && "$BIVY" spec)
  local args='["sh"]'
  [ $# -gt 0 ] && args=$(printf '%s\n' "$@" | jq -R . | jq -sc .)
  jqi "$dir/config.json" --arg root "$ROOTFS" --argjson args "$args" --arg cg "$(cgpath "$(basename "$dir")")" \
    '.root.path = $root | .root.readonly = true | .process.args = $args | .process.terminal = false | .linux.cgroupsPath = $cg'
}

# jqi FILE [jq args...] FILTER: edit a JSON file in place with jq
jqi() {
  local file=$1; shift
  jq "$@" "$file" >"$file.new" && mv "$file.new" "$file"
}

fail() { echo "FAIL: $*" >&2; exit 1; }
assert_eq() { [ "$1" == "$2" ] || fail "${3:-values differ}: expected [$2], got [$1]"; }
assert_contains() { [[ "$1" == *"$2"* ]] || fail "${3:-missing text}: [$2] not in [$1]"; }
assert_not_contains() { [[ "$1" != *"$2"* ]] || fail "${3:-unexpected text}: [$2] in [$1]"; }
# expect_fail PATTERN CMD...: CMD must exit non-zero and its stderr must contain PATTERN
expect_fail() {
  local pat=$1; shift
  local out rc=0
  out=$("$@" 2>&1) || rc=$?
  [ $rc -ne 0 ] || fail "expected failure of: $* (got success: $out)"
  [[ "$out" == *"$pat"* ]] || fail "error of [$*] lacks [$pat]: $out"
}
# wait_for CMD... : retry CMD for up to 10 s (50 s in the VM)
wait_for() { wait_for_s 10 "$@"; }
# wait_for_s SECS CMD... : the same for up to SECS seconds (5 x SECS in the VM)
wait_for_s() {
  local i n=$(($1 * 10))
  shift
  [ "${BIVY_VM:-0}" = 1 ] && n=$((n * 5))
  for ((i = 0; i < n; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "timed out waiting for: $*"
}
# the container's status from bivy state
status_of() { bivy state "$1" | jq -r .status; }
pid_of() { bivy state "$1" | jq -r .pid; }
in_vm() { [ "${BIVY_VM:-0}" = 1 ]; }

# run_with RUNNER DIR [options]: run the bundle's container to completion, with `bivy run`
# (RUNNER=bivy) or with tests/helpers/rootfs-run (the rootfs code without the lifecycle code,
# to tell a rootfs bug from a lifecycle one: ROOTFS_RUNNER=helper).
run_with() {
  local runner=$1 dir=$2; shift 2
  if [ "$runner" = bivy ]; then
    bivy run -b "$dir" "$@" "$(basename "$dir")"
  else
    "$HELPERS/rootfs-run" "$@" "$dir"
  fi
}
run_ctr() { run_with "${ROOTFS_RUNNER:-bivy}" "$@"; }
# bivy without CAP_SYS_RESOURCE in its bounding set (as on the development host, whatever
# the machine running the tests has)
bivy_nores() { setpriv --bounding-set -sys_resource "$BIVY" --root "$T/root" "$@"; }

is_v2() { [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; }
# cgfile ID FILE: the container's cgroup file (cgroupsPath from cgpath), in the hierarchy that
# holds it: /sys/fs/cgroup/... on v2, /sys/fs/cgroup/<controller>/... on v1/hybrid
cgfile() {
  local p ctrl
  p=$(cgpath "$1")
  if is_v2; then echo "/sys/fs/cgroup$p/$2"; return; fi
  ctrl=${2%%.*}
  case $ctrl in cgroup) ctrl=unified ;; io) ctrl=blkio ;; esac
  echo "/sys/fs/cgroup/$ctrl$p/$2"
}
