# bivy events: runc-compatible stats and OOM event lines; ends with the container.
TIERS="host v2"

test_oom_event_reported() {
  mkbundle "$T/e1" sh -c 'while [ ! -e /ctl/go ]; do sleep 0.1; done; head -c 100m /dev/zero | tail >/dev/null; sleep 1000'
  mkdir -p "$T/e1/ctl"
  jqi "$T/e1/config.json" --arg ctl "$T/e1/ctl" '.linux.resources.memory = {"limit": 67108864}
    | .mounts += [{"destination": "/ctl", "type": "bind", "source": $ctl, "options": ["rbind", "rw"]}]'
  bivy run -d -b "$T/e1" e1 >/dev/null
  bivy events --interval 200ms e1 >"$T/events" 2>"$T/events.err" &
  epid=$!
  on_exit "kill $epid 2>/dev/null"
  # watching: the first stats line is out
  wait_for grep -q '"type":"stats"' "$T/events"
  touch "$T/e1/ctl/go"
  wait_for grep -q '"type":"oom"' "$T/events"
  line=$(grep '"type":"oom"' "$T/events" | head -1)
  assert_eq "$(jq -r .id <<<"$line")" e1
  stats=$(grep '"type":"stats"' "$T/events" | tail -1)
  assert_eq "$(jq -r .data.memory.usage.limit <<<"$stats")" 67108864 "stats data"
  # the stream ends when the container stops
  bivy kill e1 KILL
  wait_for sh -c "! kill -0 $epid 2>/dev/null"
  wait $epid || fail "events exited with $?: $(cat "$T/events.err")"
}

test_events_stats_once_and_errors() {
  mkbundle "$T/e2" sleep 1000
  bivy run -d -b "$T/e2" e2 >/dev/null
  out=$(bivy events --stats e2)
  assert_eq "$(wc -l <<<"$out")" 1 "one line"
  assert_eq "$(jq -r .type <<<"$out")" stats
  assert_eq "$(jq -r .id <<<"$out")" e2
  [ "$(jq -r .data.pids.current <<<"$out")" -ge 1 ] || fail "pids in stats: $out"
  expect_fail "does not exist" bivy events nosuch
  expect_fail "--interval" bivy events --interval 0 e2
}
