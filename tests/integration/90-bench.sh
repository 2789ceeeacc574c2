# make bench: the timing harness and tools/bench/run (one short round, nothing left behind).
NEEDS="runc gcc jq ip"

bench_harness() {
  gcc -O2 -std=gnu17 -Wall -Wextra -Werror -D_GNU_SOURCE -o "$T/benchtime" "$REPO/tools/bench/benchtime.c" -lm
}

# nothing of run PID is left: cgroups, network namespaces, bundles, work dirs, containers
assert_bench_clean() {
  local pid=$1
  local left
  left=$(ls -d /sys/fs/cgroup/bivybench-"$pid" /sys/fs/cgroup/*/bivybench-"$pid" 2>/dev/null || true)
  assert_eq "$left" "" "cgroups left by bench run $pid"
  left=$(ip netns list | grep -E "bench-(net|ipc)-$pid\b" || true)
  assert_eq "$left" "" "network namespaces left by bench run $pid"
  [ ! -e "$BUILD/bench/bundles-$pid" ] || fail "bundles left: $BUILD/bench/bundles-$pid"
  left=$(grep -c "bench-.*-$pid\|$BUILD/bench/tmp-$pid\." /proc/self/mountinfo || true)
  [ -z "$(ls -d "$BUILD/bench/tmp-$pid".* 2>/dev/null)" ] || fail "work directory left: $BUILD/bench/tmp-$pid.*"
  assert_eq "$left" "0" "mounts left by bench run $pid"
  # (a process left in a container would have kept its cgroup alive: checked above)
  left=$(ps -eo args | grep -c "[b]ench/bundles-$pid/" || true)
  assert_eq "$left" "0" "runtime processes left by bench run $pid"
}

test_harness_counts_rounds_and_reports_failures() {
  bench_harness
  printf 'V\tok\nS\tstep\t/bin/true\nS\tstep\t/bin/true\nU\tclean\t/bin/false\n' >"$T/plan"
  printf 'V\tfails\nS\tstep\t/bin/sh\t-c\techo boom >&2; exit 3\n' >>"$T/plan"
  printf 'V\thangs\nS\tstep\t/bin/sleep\t30\n' >>"$T/plan"
  mkdir "$T/err"
  "$T/benchtime" -r 4 -w 1 -t 1 -e "$T/err" -o "$T/out.json" "$T/plan"
  assert_eq "$(jq -r '.rounds' "$T/out.json")" 4
  # two timed steps with one label are pooled; the failing untimed step does not count
  assert_eq "$(jq -r '.variants[0] | [.ok, .total.n, .steps.step.n, (.samples | length)] | @tsv' "$T/out.json")" \
    "$(printf 'true\t4\t8\t4')"
  jq -e '.variants[0].total | .median > 0 and .p90 >= .median and .max >= .p90' "$T/out.json" >/dev/null ||
    fail "bad statistics: $(jq -c '.variants[0].total' "$T/out.json")"
  assert_eq "$(jq -r '.variants[1] | [.ok, .total.n] | @tsv' "$T/out.json")" "$(printf 'false\t0')"
  assert_eq "$(jq -r '.variants[1].error' "$T/out.json")" "step: exit 3: boom"
  assert_contains "$(jq -r '.variants[2].error' "$T/out.json")" "timed out after 1 s"
  expect_fail "expected one PLAN" "$T/benchtime" -r 0 "$T/plan"
}

# bench_ok [ENV=V...] -- ARGS...: one bench run to $T/r.json that must succeed and leave nothing behind
bench_ok() {
  local pid rc=0 envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  env "${envs[@]}" BUILD="$BUILD" "$REPO/tools/bench/run" "$@" --out "$T/r.json" >"$T/report.md" 2>"$T/log" &
  pid=$!
  wait $pid || rc=$?
  [ $rc = 0 ] || fail "bench exited $rc: $(tail -5 "$T/log")"
  assert_bench_clean $pid
}

test_bench_run_one_round_and_clean_up() {
  bench_ok -- --no-vm --no-breakdown --only lifecycle,update,net --rounds 1 --warmup 0
  # every runtime and floor has a row: measured, or n/a with the reason
  jq -e '[.scenarios[] | select(.id == "lifecycle") | .variants[] | .name] | sort ==
         ["bivy", "crun", "floor: fork+exec", "floor: unshare", "runc"]' "$T/r.json" >/dev/null ||
    fail "lifecycle rows: $(jq -c '[.scenarios[0].variants[].name]' "$T/r.json")"
  jq -e '[.scenarios[].variants[] | select(.ok | not) | .error | length > 0] | all' "$T/r.json" >/dev/null ||
    fail "an n/a row without a reason"
  jq -e '.scenarios[] | select(.id == "lifecycle") | .variants[] | select(.name == "runc") | .ok and .total.n == 1' \
    "$T/r.json" >/dev/null || fail "runc lifecycle not measured: $(jq -c '.scenarios[0].variants' "$T/r.json")"
  jq -e '.machine.kernel != "" and (.machine.cgroups | length > 0) and (.targets | length) >= 6' "$T/r.json" >/dev/null ||
    fail "machine info or targets missing"
  assert_contains "$(cat "$T/report.md")" "| lifecycle: run /bin/true | runc |"
  assert_contains "$(cat "$T/report.md")" "### Targets"
}

# a container cgroup of bench run PID exists
bench_has_cgroup() {
  local d
  for d in /sys/fs/cgroup/bivybench-"$1" /sys/fs/cgroup/*/bivybench-"$1"; do
    [ -d "$d" ] && [ -n "$(find "$d" -mindepth 1 -type d)" ] && return 0
  done
  return 1
}

test_bench_sigterm_leaves_nothing() {
  local pid i
  BUILD=$BUILD "$REPO/tools/bench/run" --no-vm --no-breakdown --only lifecycle --rounds 500 \
    --out "$T/r.json" >"$T/out" 2>&1 &
  pid=$!
  on_exit "kill -TERM $pid 2>/dev/null"
  # wait until containers are being made (a cgroup of this run exists), then stop it
  wait_for grep -q "bench: lifecycle:" "$T/out"
  wait_for bench_has_cgroup $pid
  kill -TERM $pid
  local rc=0
  wait $pid || rc=$?
  assert_eq "$rc" 130 "exit status after SIGTERM"
  assert_contains "$(cat "$T/out")" "interrupted"
  assert_bench_clean $pid
  [ ! -e "$T/r.json" ] || fail "a results file from an interrupted run"
}

test_bench_bivyd_rows_and_clean_up() {
  bench_ok BENCH_BIVYD_N=2 -- --no-vm --only bivyd --rounds 2 --warmup 0
  assert_eq "$(jq -r '[.scenarios[0].variants[].name] | join(",")' "$T/r.json")" \
    "bivyd restart latency,bivyd memory per instance (KiB),conmon memory per container (KiB)"
  # measured (restart: one sample per round), or n/a with the reason
  jq -e '.scenarios[0].variants[] | select(.name == "bivyd restart latency") | (.ok and .total.n == 2) or (.error | length > 0)' \
    "$T/r.json" >/dev/null || fail "restart row: $(jq -c '.scenarios[0].variants[0]' "$T/r.json")"
  jq -e '[.targets[] | select(.target | startswith("bivyd"))] | length == 2' "$T/r.json" >/dev/null || fail "bivyd targets"
}

test_bench_autoscale_rows_and_clean_up() {
  bench_ok BENCH_AS_MEM_RUNS=1 -- --no-vm --no-breakdown --only autoscale --rounds 1 --warmup 0
  assert_eq "$(jq -r '[.scenarios[0].variants[].name] | join(",")' "$T/r.json")" \
    "memory: usage crossed 80% -> limit grown,cpu: PSI trigger -> quota grown"
  # the grower crosses the line at 64M, 96M, 144M, 216M and 324M: five grow events
  jq -e '.scenarios[0].variants[0] | .ok and .total.n == 5' "$T/r.json" >/dev/null ||
    fail "memory row: $(jq -c '.scenarios[0].variants[0]' "$T/r.json")"
  jq -e '[.targets[] | select(.target | startswith("autoscale"))] | length == 2' "$T/r.json" >/dev/null || fail "autoscale targets"
}

test_bench_failover_row_and_clean_up() {
  command -v etcd >/dev/null || fail "etcd not installed (make deps)"
  bench_ok BENCH_FO_ROUNDS=2 -- --no-vm --no-breakdown --only failover --rounds 1 --warmup 0
  # plain http and mutual TLS, side by side
  jq -e '.scenarios[0].variants | length == 2 and all(.ok and .total.n == 2 and .total.median > 0)' "$T/r.json" >/dev/null ||
    fail "failover rows: $(jq -c '.scenarios[0].variants' "$T/r.json")"
  jq -e '[.targets[] | select(.target | startswith("cluster failover"))] | length == 2' "$T/r.json" >/dev/null || fail "failover targets"
  # nothing of the cluster is left: no etcd, no node, no instance of this run
  ! pgrep -f "$BUILD/bench/tmp-.*/fo-" >/dev/null || fail "cluster processes left: $(pgrep -af "$BUILD/bench/tmp-.*/fo-")"
}

test_bench_throughput_and_syscalls_rows_and_clean_up() {
  bench_ok BENCH_TP_N=3 BENCH_TP_PAR=1,2 BENCH_TP_ROUNDS=1 -- --no-vm --no-breakdown --only throughput,syscalls --rounds 1 --warmup 0
  # bivy and runc measured at each P (3 starts each, figures in order); crun a row with its reason
  jq -e '.scenarios[] | select(.id == "throughput") | [.variants[] | select(.name == "bivy" or .name == "runc")]
         | length == 4 and all(.ok and .n == 3 and .per_s > 0 and .latency.p99 >= .latency.p50)' "$T/r.json" >/dev/null ||
    fail "throughput rows: $(jq -c '.scenarios[] | select(.id == "throughput") | .variants' "$T/r.json")"
  jq -e '.scenarios[] | select(.id == "throughput") | [.variants[] | select(.name == "crun")] | length == 2 and all(.ok or (.error | length > 0))' \
    "$T/r.json" >/dev/null || fail "crun throughput rows"
  # bivy --debug reports its locks: one line per call, at least the state locks of create and start
  jq -e '.scenarios[] | select(.id == "throughput") | .variants[] | select(.name == "bivy --debug")
         | .locks.calls == 3 and .locks.taken >= 6 and .locks.contended <= .locks.taken' "$T/r.json" >/dev/null ||
    fail "lock counts: $(jq -c '.scenarios[] | select(.id == "throughput") | [.variants[] | .locks]' "$T/r.json")"
  # one strace -c summary per runtime (strace is in tools/deps.sh): totals and the top calls
  jq -e '.scenarios[] | select(.id == "syscalls") | [.variants[] | select(.name == "bivy" or .name == "runc")]
         | length == 2 and all(.ok and .total > 0 and (.top | length) > 0 and .processes >= 1)' "$T/r.json" >/dev/null ||
    fail "syscalls rows: $(jq -c '.scenarios[] | select(.id == "syscalls") | .variants' "$T/r.json")"
  assert_contains "$(cat "$T/report.md")" "| bivy | 1 |"
  assert_contains "$(cat "$T/report.md")" "| Runtime | syscalls |"
  jq -e '[.targets[] | select(.target | startswith("throughput") or startswith("syscalls"))] | length == 4' "$T/r.json" >/dev/null ||
    fail "throughput and syscalls targets"
  # no container of this run is left in any runtime (their cgroups are checked by bench_ok)
  ! pgrep -f "bench-tp-" >/dev/null || fail "throughput processes left: $(pgrep -af bench-tp-)"
}

test_bench_throughput_sigterm_leaves_nothing() {
  local pid rc=0
  BENCH_TP_N=60 BENCH_TP_PAR=4 BUILD=$BUILD "$REPO/tools/bench/run" --no-vm --no-breakdown --only throughput \
    --out "$T/r.json" >"$T/out" 2>&1 &
  pid=$!
  on_exit "kill -TERM $pid 2>/dev/null"
  # stop it while the parallel callers are starting containers
  wait_for_s 30 grep -q "bench: throughput:" "$T/out"
  wait_for bench_has_cgroup $pid
  kill -TERM $pid
  wait $pid || rc=$?
  assert_eq "$rc" 130 "exit status after SIGTERM"
  assert_bench_clean $pid
  ! pgrep -f "bench-tp-" >/dev/null || fail "throughput processes left: $(pgrep -af bench-tp-)"
}
