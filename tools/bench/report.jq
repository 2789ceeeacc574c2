# results.json -> the Markdown report printed by tools/bench/run.
def ms: if . == null then "n/a" else (. * 100 | round / 100 | tostring) end;
def x: if . == null then "—" else ((. * 100 | round / 100 | tostring) + "x") end;
def cell: gsub("\\|"; "/") | gsub("\n"; " ");

def table($scens):
  "| Scenario | Runtime | median ms | p90 ms | vs crun | vs runc | vs floor | note |",
  "|---|---|---:|---:|---:|---:|---:|---|",
  ($scens[] | select(.id != "throughput" and .id != "syscalls") as $s | $s.variants[] |
    "| \($s.title)\(if $s.rounds_planned and $s.rounds < $s.rounds_planned then " (\($s.rounds) rounds)" else "" end) | \(.name) | "
    + (if .ok and .unit == "KiB" then "\(.stat.median | ms) KiB | | | | | " + ($s.variants as $vv | [$vv[] | select(.name | startswith("conmon")) | select(.ok)][0] as $c
              | if $c and (.name | startswith("conmon") | not) then "\(.stat.median / $c.total.median * 100 | round / 100)x conmon" else "" end)
       elif .ok then "\(.stat.median | ms) | \(.stat.p90 | ms) | \(.vs.crun | x) | \(.vs.runc | x) | \(.vs.floor | x) | "
              + ([if ($s.floor != null) and .vs.floor != null and (.name | startswith("floor:") | not) then "vs \($s.floor)" else empty end,
                  if (.steps | length) > 1 then (.steps | to_entries | map("\(.key) \(.value.median | ms)") | join(" + ")) else empty end]
                 | join("; "))
       else "n/a | | | | | \(.error // "" | cell)" end)
    + " |");

# throughput: one row per runtime and P
def tp_table($scens):
  ($scens // [] | .[] | select(.id == "throughput")) as $s
  | "**\($s.title)** (\($s.rounds) rounds; P parallel callers): \($s.what).",
    "",
    "| Runtime | P | containers/s | p50 start ms | p99 start ms | p50 vs P=\($s.parallel | min) | vs runc | vs crun | locks per container (bivy --debug) |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ($s.variants[] |
      "| \(.name) | \(.parallel // "") | "
      + (if .ok then "\(.per_s | ms) | \(.latency.p50 | ms) | \(.latency.p99 | ms) | \(.p50_vs_p1 | x) | \(.vs.runc | x) | \(.vs.crun | x) | "
              + (if .locks and .locks.calls > 0 then
                   "\(.locks.taken / .locks.calls * 100 | round / 100) taken, \(.locks.contended / .locks.calls * 100 | round / 100) contended, \(.locks.wait_ms_per_container | ms) ms waiting"
                 else "" end)
         else "n/a | | | | | | \(.error // "" | cell)" end) + " |"),
    "";

# syscalls: one row per runtime
def sc_table($scens):
  ($scens // [] | .[] | select(.id == "syscalls")) as $s
  | "**\($s.title)**: \($s.what).",
    "",
    "| Runtime | syscalls | failed | distinct | processes | init (to exec) | vs runc | vs crun | top by count |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ($s.variants[] |
      "| \(.name) | "
      + (if .ok then "\(.total) | \(.errors) | \(.distinct) | \(.processes) | \(.init_calls // "?") | \(.vs.runc | x) | \(.vs.crun | x) | "
              + ([.top[:6][] | "\(.syscall) \(.calls)"] | join(", "))
         else "n/a | | | | | | | \(.error // "" | cell)" end) + " |"),
    "";

"## bivy benchmarks",
"",
"Machine: \(.machine.cpu), \(.machine.cores) cores, \(.machine.memory), kernel \(.machine.kernel), cgroups \(.machine.cgroups); \(.machine.date); load average at start \(.machine.loadavg // "?") (other work on the machine adds noise: compare ratios within a table, the rounds are interleaved).",
"Peers: \(.machine.runc); \(.machine.crun). bivy: \(.machine.bivy) (verbs: \(.machine.bivy_verbs | join(" "))).",
"Method: per scenario every runtime runs interleaved (A B C, B C A, ...), \(.config.warmup) warm-up + \(.config.rounds) measured rounds, timed by \(.config.harness); same bundle for all (runc spec defaults + pid/net/ipc/uts/mount/cgroup namespaces, memory+pids limits, masked paths); seccomp: \(.config.seccomp_profile). Ratios are of medians; update is per call.",
"",
"### Host: cgroups \(.machine.cgroups)",
"",
"crun refuses every container on this hybrid host (\"cgroups in hybrid mode not supported\"), so here bivy is compared with runc and the floors; the crun comparison is in the VM tier below.",
"",
table(.scenarios),
"",
"Scenarios: " + ([.scenarios[] | "**\(.title)**: \(.what)" + (if .rounds and .id == "bivyd" then "" else "" end)] | join("; ")) + ".",
"",
tp_table(.scenarios),
sc_table(.scenarios),
(.scenarios[] | select(.id == "net") | .variants as $v
  | [$v[] | select(.ok) | {key: .name, value: .stat.median}] | from_entries
  | select(.["bivy run, org.bivy.net=bridge"] and .["bivy run, no network"])
  | "Bridge networking cost in bivy (median with bridge - median without): \((.["bivy run, org.bivy.net=bridge"] - .["bivy run, no network"]) | ms) ms per container (setup + teardown); the same with ip(8): \(.["ip tool (8 calls)"] | ms) ms.", ""),
"### VM tier (pure cgroup v2, QEMU)",
"",
(if (.vm | type) != "object" then "not run (--no-vm)"
 elif .vm.status != "ok" then "not run: \(.vm.status)"
 else
   "Emulated (TCG): fork+exec is ~50x slower than on the host, so \(.vm.config.rounds) rounds (+\(.vm.config.warmup) warm-up) per scenario, capped at 40 s of measuring each; kernel \(.vm.machine.kernel), cgroups \(.vm.machine.cgroups). Compare ratios, not absolute times.",
   "",
   table(.vm.scenarios),
   "",
   tp_table(.vm.scenarios),
   sc_table(.vm.scenarios)
 end),
"",
"### Targets",
"",
"| Target | Where | Value | Limit | Result | Note |",
"|---|---|---:|---:|---|---|",
(.targets[] | "| \(.target) | \(.where) | \(if .unit then (.value | ms) + " " + .unit else (.value | x) end) | \(.limit) | **\(.result)** | \(.note // "" | cell) |"),
"",
"### Where bivy's start time goes",
"",
(if .breakdown == null then "Not run (--no-breakdown, or the lifecycle scenario not selected)."
 elif (.breakdown | has("bivy") | not) then
   "bivy run is not available yet: no breakdown." +
   (if .breakdown.runc then " For reference, runc's timeline (strace -f, key syscalls; strace inflates every step, read as proportions):" else "" end)
 else "bivy --debug time stamps, then an strace -f timeline of key syscalls for bivy and runc (strace inflates every step: read as proportions)." end),
"",
(.scenarios[] | select(.id == "startup") | .variants as $v
  | [$v[] | select(.ok) | {key: .name, value: .stat.median}] | from_entries
  | select(.bivy and .["floor: fork+exec"])
  | "Process start-up alone (exec, dynamic loading of the shared libraries, init; `bivy --version` minus a static fork+exec): \((.bivy - .["floor: fork+exec"]) | ms) ms per bivy invocation; `bivy run` pays it once, create + start + delete three times.", ""),
(.scenarios[] | select(.id == "csd") | .variants[] | select(.name == "bivy" and .ok)
  | "The three phases from the create + start + delete scenario (medians): " + (.steps | to_entries | map("\(.key) \(.value.median | ms) ms") | join(", ")) + "."),
"",
(if (.breakdown.bivy_debug // []) | length > 0 then
   "**bivy --debug** (median of 7 `bivy run` of the lifecycle bundle, ms since the verb started):",
   "",
   "| verb | ms | step | what |", "|---|---:|---:|---|",
   (.breakdown.bivy_debug | . as $d | range(0; length) as $i | $d[$i] |
     "| \(.verb) | \(.t | ms) | +\(if $i > 0 and $d[$i - 1].verb == .verb then (.t - $d[$i - 1].t) else .t end | ms) | \(.what | cell) |"),
   ""
 else empty end),
((.breakdown // {}) | to_entries[] | select(.key == "bivy" or .key == "runc") |
  "**\(.key)** (strace -f -ttt):",
  "",
  "| ms since start | event |", "|---:|---|",
  (.value.timeline[] | "| \(.t | ms) | \(.what | cell) |"),
  "",
  "Top syscalls by time (strace -f -c): " + ([.value.top_syscalls[] | "\(.syscall) \(.seconds * 1000 | ms) ms/\(.calls)"] | join(", ")),
  "")
