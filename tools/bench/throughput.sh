# tools/bench/throughput.sh: the throughput and syscalls scenarios of tools/bench/run
# (sourced by it; uses its helpers: rt, mkb, usable, log, RT_BIN, RUNTIMES, W, BUNDLES, CGP,
# in_vm, TMO, SCEN_JSON, HPID).
#
# throughput: N containers started with `RT run -d` (a long-running sleep, the bench bundle
# with a cgroup of its own each) by P parallel callers (build/bench/tput: posix_spawn,
# CLOCK_MONOTONIC, a closed loop of P callers), then all deleted (untimed). Every round runs
# every P for every runtime, the order of the runtimes rotating. Figures: containers per
# second (N / wall time, median of the rounds), p50 and p99 start latency (one `run -d`,
# pooled over the rounds). "bivy --debug" is the same with bivy's --debug time stamps on,
# whose "locks:" line says how many locks each call took, how many it had to wait for and
# for how long: that is where contention between concurrent bivy calls would show.
#
# syscalls: `strace -f -c` of one `RT run /bin/true` (the lifecycle bundle) per runtime:
# total calls and errors, the top calls by count; and `strace -ff` per process: how many
# processes, and the calls of the init (the process that execs /bin/true, up to that exec).
# strace runs are never timed.

TP_N=${BENCH_TP_N:-64} TP_PAR=${BENCH_TP_PAR:-1,2,8} TP_ROUNDS=${BENCH_TP_ROUNDS:-3}
if [ "$in_vm" = 1 ]; then
  TP_N=${BENCH_TP_N:-12} TP_PAR=${BENCH_TP_PAR:-1,2} TP_ROUNDS=${BENCH_TP_ROUNDS:-2}
fi
TPUT=$BENCH/tput

tp_build() {
  if [ ! -x "$TPUT" ] || [ "$here/tput.c" -nt "$TPUT" ]; then
    gcc -O2 -std=gnu17 -Wall -Wextra -Werror -D_GNU_SOURCE -o "$TPUT.tmp.$$" "$here/tput.c" &&
      mv "$TPUT.tmp.$$" "$TPUT" || { log "cannot build $TPUT"; return 1; }
  fi
}

# tp_lists VARIANT RUNTIME NAME [GLOBAL_ARGS...]: the run and delete lists of a variant
# (bundles tp-NAME-I, one cgroup each, containers bench-tp-NAME-I)
tp_lists() {
  local v=$1 r=$2 nm=$3 i; shift 3
  local bin=${RT_BIN[$r]} root=$W/root-$r
  : >"$W/tp/$v.run"; : >"$W/tp/$v.del"
  local a
  for ((i = 1; i <= TP_N; i++)); do
    a=("$bin" "$@" --root "$root" run -d --bundle "$BUNDLES/tp-$nm-$i" "bench-tp-$nm-$i")
    printf '%s\t' "${a[@]}" >>"$W/tp/$v.run"; echo >>"$W/tp/$v.run"  # (tput skips the empty last field)
    a=("$bin" --root "$root" delete -f "bench-tp-$nm-$i")
    printf '%s\t' "${a[@]}" >>"$W/tp/$v.del"; echo >>"$W/tp/$v.del"
  done
}

# tp_bundles NAME [EXTRA_JQ]: N bundles tp-NAME-I, one cgroup each
tp_bundles() {
  local r=$1
  mkb "tp-$r-TPIDX" '["/bin/sleep","1000000"]' "${2:-.}"
  # shellcheck disable=SC2046
  mkdir -p $(seq -f "$BUNDLES/tp-$r-%g" 1 "$TP_N")
  awk -v n="$TP_N" -v pre="$BUNDLES/tp-$r-" '{ l[NR] = $0 }
    END { for (i = 1; i <= n; i++) { f = pre i "/config.json"
            for (j = 1; j <= NR; j++) { s = l[j]; gsub(/TPIDX/, i, s); print s > f }
            close(f) } }' "$BUNDLES/tp-$r-TPIDX/config.json"
}

# tp_once VARIANT P ROUND: one timed pass (run -d of N) and the untimed deletion
tp_once() {
  local v=$1 p=$2 k=$3 out=$W/tp/res-$1-p$2-r$3.json errd=$W/tp/err-$1-p$2-r$3
  mkdir -p "$errd"
  # shellcheck disable=SC2086
  ${TP_WRAP[$v]:-} "$TPUT" -p "$p" -t "$TMO" -e "$errd" -o "$out" "$W/tp/$v.run" &
  HPID=$!
  wait $HPID || true
  HPID=""
  [ -s "$out" ] || echo '{"ok": false, "error": "tput failed", "samples": []}' >"$out"
  # lock statistics from bivy --debug ("bivy: locks: run: T taken, C contended, W ms waiting")
  cat "$errd"/*.err 2>/dev/null | awk '/^bivy: locks: run: / {t += $4; c += $6; w += $8; n++}
    END {printf "{\"calls\": %d, \"taken\": %d, \"contended\": %d, \"wait_ms\": %.3f}\n", n, t, c, w}' >"$out.locks"
  # shellcheck disable=SC2086
  ${TP_WRAP[$v]:-} "$TPUT" -p 2 -t "$TMO" -o "$W/tp/del.json" "$W/tp/$v.del" &
  HPID=$!
  wait $HPID || true
  HPID=""
  # a failed pass may leave containers behind that the delete list does not cover: none
  # can (same IDs), but check that the state root is empty before the next pass
  local left; left=$(rt_ids "${TP_RT[$v]}" | grep -c '^bench-tp-' || true)
  [ "$left" = 0 ] || log "throughput: $left containers of $v left after delete"
}

declare -A TP_RT=() TP_WRAP=()
scen_throughput() {
  local res=$W/scen-throughput.json where; where=$([ $in_vm = 1 ] && echo vm || echo host)
  mkdir -p "$W/tp"
  local vars=() r na='{}'
  for r in "${RUNTIMES[@]}"; do
    if ! tp_build; then na=$(jq -c --arg k "$r" '. + {($k): "cannot build the tput driver"}' <<<"$na"); continue; fi
    if ! usable "$r" run delete; then
      na=$(jq -c --arg k "$r" --arg v "${NA[$r]}" '. + {($k): $v}' <<<"$na"); NA=(); continue
    fi
    tp_bundles "$r"
    TP_RT[$r]=$r; tp_lists "$r" "$r" "$r"; vars+=("$r")
    [ "$r" = bivy ] || continue
    TP_RT[bivy-debug]=bivy; tp_lists bivy-debug bivy bivy --debug; vars+=(bivy-debug)
    # bridge networking: every container takes the network store's lock (address lease),
    # so this is where concurrent bivy calls wait for each other. Inside a bench-made netns
    # (the harness runs in it); host tier only (the VM tier stays lean).
    if [ $in_vm = 0 ] && { [ -e "/run/netns/$NETNS" ] || ip netns add "$NETNS"; }; then
      ip -n "$NETNS" link set lo up
      tp_bundles bivyn '.annotations["org.bivy.net"] = "bridge"'
      TP_RT[bivy-net]=bivy TP_WRAP[bivy-net]="nsenter --net=/run/netns/$NETNS"
      tp_lists bivy-net bivy bivyn --debug; vars+=(bivy-net)
    fi
  done
  local pars=(${TP_PAR//,/ }) k p i n=${#vars[@]}
  log "throughput: $TP_N containers x P=${TP_PAR} x ${vars[*]}, $TP_ROUNDS rounds"
  for ((k = 1; k <= TP_ROUNDS; k++)); do
    for p in "${pars[@]}"; do
      for ((i = 0; i < n; i++)); do
        tp_once "${vars[$(((i + k) % n))]}" "$p" "$k"
      done
    done
  done
  # one JSON row per (variant, P): samples pooled over the rounds
  local rows=() v f
  for v in "${vars[@]}"; do
    for p in "${pars[@]}"; do
      rows+=("$(jq -s --arg v "$v" --argjson p "$p" '
        def pct($s; $q): $s[(($s | length) * $q | ceil) - 1 | if . < 0 then 0 else . end];
        (map(.run)) as $runs | (map(.locks)) as $locks
        | ([$runs[] | select(.ok)] | length) as $good
        | ([$runs[] | .samples[]] | sort) as $s
        | {name: ({"bivy-debug": "bivy --debug", "bivy-net": "bivy --debug, org.bivy.net=bridge"}[$v] // $v), parallel: $p,
           ok: ($good == ($runs | length)), error: ([$runs[] | .error // empty][0]),
           rounds: ($runs | length), n: ($s | length),
           per_s: ([$runs[] | select(.ok) | .per_s] | sort | if length == 0 then null else .[length / 2 | floor] end),
           wall_ms: [$runs[] | .wall_ms],
           latency: (if ($s | length) == 0 or $good < ($runs | length) then null
                     else {p50: pct($s; 0.5), p99: pct($s; 0.99), mean: (($s | add) / ($s | length) * 1000 | round / 1000), max: $s[-1]} end),
           locks: (if ($v | startswith("bivy-") | not) then null
                   else ($locks | {calls: (map(.calls) | add), taken: (map(.taken) | add), contended: (map(.contended) | add),
                                   wait_ms: (map(.wait_ms) | add)}
                         | . + {wait_ms_per_container: (if .calls > 0 then (.wait_ms / .calls * 1000 | round / 1000) else null end)}) end)}' \
        <(for f in "$W/tp"/res-"$v"-p"$p"-r*.json; do jq -c --slurpfile l "$f.locks" '{run: ., locks: $l[0]}' "$f"; done))")
    done
  done
  printf '%s\n' "${rows[@]}" | jq -s --arg where "$where" --argjson na "$na" --argjson n "$TP_N" --arg par "$TP_PAR" \
    --argjson rounds "$TP_ROUNDS" '
    {id: "throughput", title: "throughput: run -d of \($n) containers", where: $where, n: $n, rounds: $rounds,
     parallel: ($par | split(",") | map(tonumber)),
     what: "\($n) `run -d` of a sleep container (own cgroup each) by P parallel callers (closed loop), then all deleted; containers/s = N / wall time (median of \($rounds) rounds), start latency p50/p99 pooled",
     variants: (. + [$na | to_entries[] | {name: .key, parallel: null, ok: false, error: .value}])}' >"$res"
  SCEN_JSON+=("$res")
  ip netns del "$NETNS" 2>/dev/null || true
}

# strace_counts RUNTIME BUNDLE: JSON of the -c summary and the per-process counts
strace_counts() {
  local r=$1 b=$2 d=$W/sc-$r
  mkdir -p "$d"
  traced -f -c -o "$d/c" "${RT_BIN[$r]}" --root "$W/root-$r" run --bundle "$b" "bench-$r-sc" </dev/null >/dev/null 2>"$d/err1"
  local rc1=$?
  rt "$r" delete -f "bench-$r-sc" >/dev/null 2>&1
  traced -ff -o "$d/t" "${RT_BIN[$r]}" --root "$W/root-$r" run --bundle "$b" "bench-$r-sc" </dev/null >/dev/null 2>"$d/err2"
  local rc2=$?
  rt "$r" delete -f "bench-$r-sc" >/dev/null 2>&1
  if [ $rc1 != 0 ] || [ $rc2 != 0 ] || [ ! -s "$d/c" ]; then
    jq -n --arg r "$r" --arg e "$(grep -v '^strace: ' "$d/err1" "$d/err2" 2>/dev/null | head -1 | cut -d: -f2-)" \
      '{name: $r, ok: false, error: ("run under strace failed" + (if $e != "" then ":" + $e else "" end))}'
    return
  fi
  # per process: lines of strace -ff output that are calls (not "+++ exited", "--- SIG")
  local procs init f
  procs=$(ls "$d"/t.* | wc -l)
  init=null
  for f in "$d"/t.*; do
    if grep -q '^execve("/bin/true"' "$f"; then
      init=$(awk '/^execve\("\/bin\/true"/ {print n; exit} !/^(\+\+\+|---)/ {n++}' "$f")
    fi
  done
  awk '/^-----/ {s++; next} s == 1 && NF >= 5 {print $NF, $4, (NF == 6 ? $5 : 0)} s == 2 && /total$/ {print "TOTAL", $4, (NF == 6 ? $5 : 0)}' "$d/c" |
    jq -R 'split(" ") | {syscall: .[0], calls: (.[1] | tonumber), errors: (.[2] | tonumber)}' |
    jq -s --arg r "$r" --argjson procs "$procs" --argjson init "$init" '
      ([.[] | select(.syscall == "TOTAL")][0]) as $t | [.[] | select(.syscall != "TOTAL")] as $rows
      | {name: $r, ok: true, total: ($t.calls // ($rows | map(.calls) | add)), errors: ($t.errors // 0),
         distinct: ($rows | length), processes: $procs, init_calls: $init,
         top: ($rows | sort_by(-.calls) | .[:8])}'
}

scen_syscalls() {
  local res=$W/scen-syscalls.json where; where=$([ $in_vm = 1 ] && echo vm || echo host)
  local rows=() r
  for r in "${RUNTIMES[@]}"; do
    if ! command -v strace >/dev/null; then
      rows+=("$(jq -n --arg r "$r" '{name: $r, ok: false, error: "strace not installed (make deps)"}')"); continue
    fi
    if ! usable "$r" run delete; then
      rows+=("$(jq -n --arg r "$r" --arg e "${NA[$r]}" '{name: $r, ok: false, error: $e}')"); NA=(); continue
    fi
    mkb "$r-sc" '["/bin/true"]'
    rows+=("$(strace_counts "$r" "$BUNDLES/$r-sc")")
  done
  log "syscalls: strace -f -c of one run /bin/true per runtime"
  printf '%s\n' "${rows[@]}" | jq -s --arg where "$where" '
    {id: "syscalls", title: "syscalls: run /bin/true", where: $where,
     what: "strace -f -c of one `run /bin/true` (the lifecycle bundle; never timed): total calls, errors, top calls by count; strace -ff: processes, calls of the init up to its exec of /bin/true",
     variants: .}' >"$res"
  SCEN_JSON+=("$res")
}
