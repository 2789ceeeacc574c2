# bivyd: supervision, restart policies with back-off, OOM and health detection, resize,
# durable state and re-adoption, the control socket. Each test runs its own bivyd (own
# --state-dir/--socket/--root under $T, cgroups under the test's parent) and kills it, its
# instances and their cgroups at teardown.

. "$(dirname "${BASH_SOURCE[0]}")/lib-bivyd.sh"

test_up_ls_inspect_down() {
  start_bivyd
  out=$(bv up web --rootfs "$ROOTFS" --restart always -- sh -c 'echo started; exec sleep 1000')
  assert_contains "$out" "web: running"
  pid=$(field web .pid)
  alive "$pid" || fail "instance init $pid not running"
  # the init is a real container: its own pid namespace, in the test's cgroup
  [ "$(readlink /proc/"$pid"/ns/pid)" != "$(readlink /proc/self/ns/pid)" ] || fail "no pid namespace"
  grep -q "$CG_PARENT/web" /proc/"$pid"/cgroup || fail "not in the instance cgroup: $(cat /proc/"$pid"/cgroup)"
  assert_eq "$(bv inspect web | jq -r .spec.restart)" "always"
  wait_for sh -c "\"$BIVY\" --socket \"$T/sock\" logs web | grep -q started"
  bv down web --timeout 200ms >/dev/null
  alive "$pid" && fail "init $pid survived down"
  assert_eq "$(field web .state)" "stopped"
  # no restart after a down, even for "always"
  assert_eq "$(field web .restarts)" "0"
  assert_eq "$("$BIVY" --root "$T/broot" list -q)" ""
  bv up web >/dev/null
  state_is web running
  bv down --rm -t 0 web >/dev/null
  assert_eq "$(bv ls -q)" ""
  expect_fail 'no instance named "web"' bv inspect web
}

test_usage_errors() {
  start_bivyd
  expect_fail "--restart" bv up x --rootfs "$ROOTFS" --restart sometimes -- true
  expect_fail "--rootfs needs a command" bv up x --rootfs "$ROOTFS"
  expect_fail "--memory" bv up x --rootfs "$ROOTFS" --memory lots -- true
  expect_fail "no such instance" bv up nothere
  expect_fail "--health-tcp" bv up x --rootfs "$ROOTFS" --health-tcp 70000 -- true
  expect_fail "cannot reach bivyd" "$BIVY" --socket "$T/nosock" ls
  # a failed up leaves nothing behind
  expect_fail "exec" bv up x --rootfs "$ROOTFS" -- /no/such/program
  assert_eq "$(bv ls -q)" ""
  assert_eq "$("$BIVY" --root "$T/broot" list -q)" ""
}

test_crash_restart_backoff() {
  start_bivyd --max-backoff 800ms
  bv up crash --rootfs "$ROOTFS" --restart always -- sh -c 'exit 1' >/dev/null || true
  # (no wait for "running": the program exits at once, so that state lasts only moments and
  # polling may never see it on a slow build; the events below prove every start)
  # 100, 200, 400, 800 (cap), 800: then the state shows the crash loop
  wait_for restarts_at_least crash 6
  wait_for state_is crash crash-loop
  ev=$(bv monitor --format json crash)
  delays=$(jq -s -c '[.[] | select(.type == "backoff") | .delay_ms] | .[0:5]' <<<"$ev")
  assert_eq "$delays" "[100,200,400,800,800]" "back-off delays"
  # the first exit restarted at once (no back-off event between the first exit and start)
  first=$(jq -s -c '[.[] | select(.type == "exit" or .type == "start" or .type == "backoff") | .type] | .[0:4]' <<<"$ev")
  assert_eq "$first" '["start","exit","start","exit"]'
  # every delayed start came at least delay_ms after its exit
  jq -s -e '
    [ . as $e | range(1; length) as $i | $e[$i] | select(.type == "backoff") |
      {d: .delay_ms, exit: $e[$i-1].mono_ns,
       start: ([$e[$i+1:][] | select(.type == "start")][0].mono_ns // null)} |
      select(.start != null) | (.start - .exit) >= (.d * 1000000) ] | length > 0 and all' <<<"$ev" >/dev/null ||
    fail "a restart came before its back-off delay: $ev"
  assert_eq "$(field crash .last_exit)" "exited(1)"
  bv down -t 0 crash >/dev/null
  assert_eq "$(field crash .state)" "stopped"
}

test_on_failure_max() {
  start_bivyd
  bv up f3 --rootfs "$ROOTFS" --restart on-failure:3 -- sh -c 'exit 2' >/dev/null || true
  wait_for state_is f3 exited
  assert_eq "$(field f3 .restarts)" "3"
  assert_eq "$(field f3 .last_exit)" "exited(2)"
  assert_eq "$(field f3 .last_code)" "2"
  [ "$(bv monitor --format json f3 | jq -s '[.[] | select(.type == "start")] | length')" = 4 ] || fail "expected 4 starts"
  # a clean exit is not a failure
  bv up ok --rootfs "$ROOTFS" --restart on-failure -- true >/dev/null
  wait_for state_is ok exited
  assert_eq "$(field ok .restarts)" "0"
  assert_eq "$(field ok .last_exit)" "exited(0)"
}

test_down_unless_stopped_survives_bivyd_restart() {
  start_bivyd
  bv up us --rootfs "$ROOTFS" --restart unless-stopped -- sleep 1000 >/dev/null
  bv up al --rootfs "$ROOTFS" --restart always -- sleep 1000 >/dev/null
  bv down -t 100ms us >/dev/null
  bv down -t 100ms al >/dev/null
  kill9_bivyd
  start_bivyd
  # unless-stopped stays down; always comes back when the daemon starts (Docker semantics)
  assert_eq "$(field us .state)" "stopped"
  assert_eq "$(field al .state)" "running"
  assert_eq "$("$BIVY" --root "$T/broot" list -q)" "al"
}

test_kill9_bivyd_readopts() {
  start_bivyd
  for n in a b c; do bv up "$n" --rootfs "$ROOTFS" --restart always -- sleep 1000 >/dev/null; done
  bv up nope --rootfs "$ROOTFS" --restart no -- sleep 1000 >/dev/null
  declare -A pids
  for n in a b c nope; do pids[$n]=$(field "$n" .pid); done
  kill9_bivyd
  # the instances do not die with bivyd
  for n in a b c nope; do alive "${pids[$n]}" || fail "$n (pid ${pids[$n]}) died with bivyd"; done
  start_bivyd
  for n in a b c nope; do
    assert_eq "$(field "$n" .pid)" "${pids[$n]}" "$n re-adopted with its pid"
    assert_eq "$(field "$n" .restarts)" "0" "$n not restarted"
    assert_eq "$(bv inspect "$n" | jq -r .adopted)" "true"
  done
  assert_eq "$("$BIVY" --root "$T/broot" list -q | wc -l)" "4" "no duplicate containers"
  # an adopted instance that dies is still supervised
  kill -9 "${pids[a]}"
  wait_for restarts_at_least a 1
  wait_for state_is a running
  [ "$(field a .pid)" != "${pids[a]}" ] || fail "a not restarted"
  # "reboot": bivyd and every instance gone, state kept
  kill9_bivyd
  for n in a b c nope; do kill -9 "$(field_pid_from_state "$n")" 2>/dev/null || true; done
  start_bivyd
  for n in a b c; do
    wait_for state_is "$n" running
    assert_eq "$(field "$n" .last_exit)" "died-unsupervised"
  done
  assert_eq "$(field nope .state)" "exited"
  assert_eq "$("$BIVY" --root "$T/broot" list -q | sort | tr '\n' ' ')" "a b c "
}

# a bivyd SIGKILLed in the middle of a create leaves the container's state directory (its
# lock, no state.json): the next start of that name must clear it, not fail "already exists"
# forever (the chaos suite found a relaxed instance stuck so for minutes)
test_half_created_container_is_cleared() {
  start_bivyd
  mkdir -p "$T/broot/h1"
  : >"$T/broot/h1/lock"
  bv up h1 --rootfs "$ROOTFS" --restart always -- sleep 1000 >/dev/null
  wait_for state_is h1 running
  assert_eq "$(bv inspect h1 | jq -r .restarts)" "0" "started at the first attempt"
  [ -e "$T/broot/h1/state.json" ] || fail "h1 has no state"
}

# sd_notify only under a service manager: without NOTIFY_SOCKET bivyd maps no libsystemd; with
# it, READY=1 arrives once the socket answers and the instances are re-adopted, STOPPING=1 at
# SIGTERM
test_service_notify() {
  start_bivyd
  bv up a --rootfs "$ROOTFS" --restart always -- sleep 1000 >/dev/null
  ! grep -q libsystemd "/proc/$BIVYD_PID/maps" || fail "libsystemd loaded without NOTIFY_SOCKET"
  kill -TERM "$BIVYD_PID"; wait "$BIVYD_PID" 2>/dev/null || true
  "$HELPERS/notify-recv" "$T/notify" 2 20 >"$T/notify.out" &
  local rp=$!
  wait_for test -S "$T/notify"
  NOTIFY_SOCKET=$T/notify start_bivyd
  wait_for grep -q READY=1 "$T/notify.out"
  assert_eq "$(bv inspect a | jq -r .adopted)" "true" "READY=1 after re-adoption"
  grep -q libsystemd "/proc/$BIVYD_PID/maps" || fail "NOTIFY_SOCKET set but libsystemd not loaded"
  kill -TERM "$BIVYD_PID"; wait "$BIVYD_PID" 2>/dev/null || true
  wait "$rp" || fail "no second notification: $(cat "$T/notify.out")"
  assert_eq "$(cat "$T/notify.out")" "READY=1;STATUS=supervising
STOPPING=1"
}

# the pid recorded in bivyd's durable state (works while bivyd is down)
field_pid_from_state() { jq -r .pid "$T/state/instances/$1.json"; }

memory_limit_of() { # PID -> memory limit in force in its cgroup
  local p
  if p=$(grep -E '^[0-9]+:memory:' /proc/"$1"/cgroup | cut -d: -f3) && [ -n "$p" ]; then
    cat /sys/fs/cgroup/memory"$p"/memory.limit_in_bytes
  else
    p=$(grep -E '^0::' /proc/"$1"/cgroup | cut -d: -f3)
    cat /sys/fs/cgroup"$p"/memory.max
  fi
}

test_resize_live_and_after_restart() {
  start_bivyd
  bv up r --rootfs "$ROOTFS" --restart always --memory 64M -- sleep 1000 >/dev/null
  pid=$(field r .pid)
  assert_eq "$(memory_limit_of "$pid")" "67108864"
  bv resize r --memory 96M --pids-limit 50 >/dev/null
  assert_eq "$(field r .pid)" "$pid" "resize is live (no restart)"
  assert_eq "$(memory_limit_of "$pid")" "100663296"
  assert_eq "$(field r .limits.memory)" "100663296"
  kill -9 "$pid"
  wait_for restarts_at_least r 1
  wait_for state_is r running
  pid2=$(field r .pid)
  assert_eq "$(memory_limit_of "$pid2")" "100663296" "limits survive the crash-restart"
  expect_fail "--memory" bv resize r --memory nonsense
  expect_fail "nothing to change" bv resize r
}

test_oom_killed_and_restarted() {
  start_bivyd
  # doubles a shell string until the 16M limit OOM-kills it
  bv up hog --rootfs "$ROOTFS" --restart on-failure:1 --memory 16M -- sh -c 'a=0123456789; while :; do a=$a$a; done' \
    >/dev/null || true
  wait_for state_is hog exited
  assert_eq "$(field hog .last_exit)" "oom-killed"
  assert_eq "$(field hog .restarts)" "1"
  [ "$(field hog .oom_kills)" -ge 2 ] || fail "expected 2 OOM kills, got $(field hog .oom_kills)"
  bv metrics | grep -q '^bivyd_instance_oom_kills_total{name="hog"} [1-9]' || fail "metrics lack the OOM kills"
}

test_health_checks() {
  start_bivyd
  # fails its check (no /dev/shm/ok): restarted
  bv up sick --rootfs "$ROOTFS" --restart always --health-cmd 'test -e /dev/shm/ok' --health-interval 100ms \
    --health-retries 2 --health-timeout 5s -- sleep 1000 >/dev/null
  # passes: left alone
  bv up fine --rootfs "$ROOTFS" --restart always --health-cmd 'true' --health-interval 100ms --health-retries 2 \
    -- sleep 1000 >/dev/null
  # tcp and http probes against busybox servers inside the instance
  bv up web --rootfs "$ROOTFS" --restart always --health-http 8080/index.html --health-interval 100ms \
    -- sh -c 'mkdir -p /dev/shm/www && echo hi >/dev/shm/www/index.html && exec busybox httpd -f -p 8080 -h /dev/shm/www' \
    >/dev/null
  bv up tcp --rootfs "$ROOTFS" --restart always --health-tcp 9000 --health-interval 100ms --health-retries 2 \
    -- sleep 1000 >/dev/null
  fine_pid=$(field fine .pid)
  wait_for sh -c "[ \"\$(\"$BIVY\" --socket \"$T/sock\" ls --format json | jq -r '.[] | select(.name==\"fine\") | .health')\" = healthy ]"
  wait_for restarts_at_least sick 1
  wait_for restarts_at_least tcp 1
  wait_for sh -c "[ \"\$(\"$BIVY\" --socket \"$T/sock\" ls --format json | jq -r '.[] | select(.name==\"web\") | .health')\" = healthy ]"
  bv monitor --format json sick | jq -s -e 'map(select(.type == "exit" and .reason == "unhealthy")) | length >= 1' >/dev/null ||
    fail "sick was not restarted for being unhealthy"
  assert_eq "$(field fine .restarts)" "0"
  assert_eq "$(field fine .pid)" "$fine_pid"
  assert_eq "$(field web .restarts)" "0"
  bv monitor --format json tcp | jq -s -e 'map(select(.type == "health" and (.error // "" | test("connect")))) | length >= 1' \
    >/dev/null || fail "tcp probe did not report a connect failure"
}

test_logs_tail_follow_rotate() {
  start_bivyd --log-max-size 8k
  bv up talk --rootfs "$ROOTFS" -- sh -c 'trap "echo late" USR1; echo out; echo err >&2; echo first; while :; do sleep 0.05; done' >/dev/null
  wait_for sh -c "\"$BIVY\" --socket \"$T/sock\" logs talk | grep -q first"
  out=$(bv logs talk)
  assert_contains "$out" "out"
  assert_contains "$out" "err"
  assert_eq "$(bv logs --tail 1 talk)" "first"
  bv logs -f talk >"$T/follow" &
  fpid=$!
  wait_for grep -q first "$T/follow"
  kill -USR1 "$(field talk .pid)"
  wait_for grep -q late "$T/follow"
  kill "$fpid"
  # rotation: a chatty instance's log stays capped, one old file kept
  bv up chat --rootfs "$ROOTFS" -- sh -c 'while :; do echo 0123456789012345678901234567890123456789; sleep 0.002; done' >/dev/null
  wait_for test -s "$T/state/logs/chat.log.1"
  [ "$(stat -c %s "$T/state/logs/chat.log.1")" -gt 8192 ] || fail "rotated file smaller than the cap"
  bv logs --tail 2 chat | grep -q 0123456789 || fail "logs after rotation"
}

test_bad_requests() {
  start_bivyd
  assert_contains "$(printf 'this is not json\n' | raw)" "invalid JSON"
  assert_contains "$(printf '[1,2]\n' | raw)" "must be a JSON object"
  assert_contains "$(printf '{"verb":"explode"}\n' | raw)" 'unknown verb'
  assert_contains "$(printf '{"verb":"up","name":"x","spec":{"rootfs":"relative","args":["true"]}}\n' | raw)" \
    "spec.rootfs: must be an absolute path"
  assert_contains "$( (head -c 10485760 /dev/zero | tr '\0' a; echo) | raw)" "line longer than"
  # a client that disconnects mid-request
  printf '{"verb":"ls"' | raw >/dev/null || true
  # a client that connects and never writes does not block others
  # (nc reads a FIFO nobody writes: no writer process to leak, as a `sleep | nc` pipeline did)
  mkfifo "$T/idle.fifo"
  nc -U "$T/sock" <>"$T/idle.fifo" >/dev/null &
  idle=$!
  # several requests on one connection, answered in order
  two=$(printf '{"verb":"ls"}\n{"verb":"nope"}\n' | raw)
  assert_eq "$(jq -s -c 'map(.ok)' <<<"$two")" "[true,false]"
  assert_eq "$(bv ls -q)" ""
  kill "$idle" 2>/dev/null || true
  # only root may connect
  out=$(printf '{"verb":"ls"}\n' | setpriv --reuid 65534 --regid 65534 --clear-groups nc -N -U "$T/sock" 2>&1) || true
  assert_not_contains "$out" '"ok":true'
  [ "$(stat -c %a "$T/sock")" = 600 ] || fail "socket mode $(stat -c %a "$T/sock")"
  # even through a socket opened up by mistake (mode 666 in a world-reachable directory):
  # the peer's uid is checked
  pub=$(mktemp -d /var/tmp/bivyd-pub.XXXXXX)
  on_exit rm -rf "$pub"
  chmod 755 "$pub"
  "$BIVYD" --root "$T/broot2" --state-dir "$T/state2" --socket "$pub/sock" 2>>"$T/bivyd.log" &
  echo $! >>"$T/bivyd.pids"
  wait_for "$BIVY" --socket "$pub/sock" ls
  chmod 666 "$pub/sock"
  out=$(printf '{"verb":"ls"}\n' | setpriv --reuid 65534 --regid 65534 --clear-groups nc -N -U "$pub/sock" 2>&1) || true
  assert_contains "$out" "permission denied: bivyd serves root only"
  alive "$BIVYD_PID" || fail "bivyd died"
  bv ls >/dev/null
}

test_scale_200() {
  # 200 instances; 25 under ASan+UBSan (creates there are several times slower)
  local n=200
  [[ "$BUILD" == *asan* ]] && n=25
  start_bivyd
  # a lean bundle (pid and mount namespaces only) keeps 200 creates fast
  mkbundle "$T/lean" sleep 1000
  jqi "$T/lean/config.json" 'del(.linux.cgroupsPath) | del(.hostname) | .linux.namespaces = [{"type": "pid"}, {"type": "mount"}]'
  rss0=$(awk '/^VmRSS/ {print $2}' /proc/"$BIVYD_PID"/status)
  for i in $(seq 1 "$n"); do bv up "s$i" --bundle "$T/lean" --restart always >/dev/null; done
  assert_eq "$(bv ls --format json | jq '[.[] | select(.state == "running")] | length')" "$n"
  assert_eq "$(bv ls --format json | jq '[.[].pid] | unique | length')" "$n"
  assert_eq "$("$BIVY" --root "$T/broot" list -q | wc -l)" "$n"
  rss1=$(awk '/^VmRSS/ {print $2}' /proc/"$BIVYD_PID"/status)
  per=$(((rss1 - rss0) * 1024 / n))
  echo "bivyd RSS: ${rss0} KiB idle, ${rss1} KiB with $n instances: ${per} bytes per instance" | tee -a "$T/bivyd.log"
  # (ASan's shadow memory and quarantine make RSS meaningless there)
  [[ "$BUILD" == *asan* ]] || [ "$per" -lt 65536 ] || fail "bivyd RSS per instance ${per} bytes (target < 64 KiB)"
  # still supervising: one crash among them is restarted
  kill -9 "$(field s10 .pid)"
  wait_for restarts_at_least s10 1
  wait_for sh -c "\"$BIVY\" --socket \"$T/sock\" metrics | grep -q '^bivyd_instances{state=\"running\"} $n\$'"
}

test_warm_restart() {
  start_bivyd
  expect_fail "spec.warm: needs net none or host" bv up w --rootfs "$ROOTFS" --warm --net bridge -- true
  bv up w --rootfs "$ROOTFS" --restart always --warm --memory 64M -- sleep 1000 >/dev/null
  # a created spare waits next to the running instance
  wait_for sh -c "[ \"\$(\"$BIVY\" --socket \"$T/sock\" inspect w | jq -r .spare_ready)\" = true ]"
  assert_eq "$("$BIVY" --root "$T/broot" list --format json | jq -r 'map(.status) | sort | join(",")')" "created,running"
  pid=$(field w .pid)
  kill -9 "$pid"
  wait_for restarts_at_least w 1
  wait_for state_is w running
  bv monitor --format json w | jq -s -e '[.[] | select(.type == "start")] | last | .warm == true' >/dev/null ||
    fail "the restart did not use the spare"
  [ "$(field w .pid)" != "$pid" ] || fail "not restarted"
  # limits are the instance's, whichever container runs it; resize reaches the spare too
  assert_eq "$(memory_limit_of "$(field w .pid)")" "67108864"
  bv resize w --memory 80M >/dev/null
  wait_for sh -c "[ \"\$(\"$BIVY\" --socket \"$T/sock\" inspect w | jq -r .spare_ready)\" = true ]"
  pid=$(field w .pid)
  kill -9 "$pid"
  wait_for restarts_at_least w 2
  wait_for state_is w running
  assert_eq "$(memory_limit_of "$(field w .pid)")" "83886080"
  # down takes the spare with it
  bv down -t 0 w >/dev/null
  assert_eq "$("$BIVY" --root "$T/broot" list -q)" ""
}
