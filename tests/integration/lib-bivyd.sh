# Helpers for the bivyd test files (70-bivyd, 71-autoscale): each test runs its own bivyd
# (own --state-dir/--socket/--root under $T, cgroups under the test's parent) and kills it,
# its instances and their cgroups at teardown. Sourced; holds no tests.

# bivy talking to this test's bivyd
bv() { "$BIVY" --socket "$T/sock" "$@"; }

bivyd_cleanup() {
  local p
  for p in $(cat "$T/bivyd.pids" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
  # every instance process at once (they are in this test's cgroups), then the containers
  for p in $(find /sys/fs/cgroup/pids/"$CG_PARENT" /sys/fs/cgroup/"$CG_PARENT" -name cgroup.procs -exec cat {} + 2>/dev/null); do
    kill -9 "$p" 2>/dev/null || true
  done
  "$BIVY" --root "$T/broot" list -q 2>/dev/null | xargs -r -P 8 -I{} "$BIVY" --root "$T/broot" delete -f {} >/dev/null 2>&1 || true
  local d
  for d in $(ls -d /sys/fs/cgroup/*/"$CG_PARENT" /sys/fs/cgroup/"$CG_PARENT" 2>/dev/null); do
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}

# start_bivyd [bivyd options...]: a bivyd for this test, ready when it answers
start_bivyd() {
  # bivyd and its instances go first at teardown (before lib.sh's cgroup removal, and
  # before a slow teardown could be cut short by the runner's timeout)
  [ -n "${BIVYD_CLEANUP_SET:-}" ] || { trap 'rc=$?; set +e; bivyd_cleanup; (exit $rc); it_teardown' EXIT; BIVYD_CLEANUP_SET=1; }
  "$BIVYD" --root "$T/broot" --state-dir "$T/state" --socket "$T/sock" --cgroup-parent "/$CG_PARENT" \
    "$@" 2>>"$T/bivyd.log" &
  BIVYD_PID=$!
  echo "$BIVYD_PID" >>"$T/bivyd.pids"
  wait_for bv ls
}

kill9_bivyd() {
  kill -9 "$BIVYD_PID"
  wait "$BIVYD_PID" 2>/dev/null || true
}

# field NAME JQ: a field of the instance summary
field() { bv ls --format json | jq -r --arg n "$1" ".[] | select(.name == \$n) | $2"; }
state_is() { [ "$(field "$1" .state)" = "$2" ]; }
restarts_at_least() { [ "$(field "$1" .restarts)" -ge "$2" ]; }
alive() { kill -0 "$1" 2>/dev/null; }

# raw request on the control socket (answer on stdout)
raw() { nc -N -U "$T/sock"; }
