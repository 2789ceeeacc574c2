# Adds to each scenario variant: .stat (the figure compared: per-call for update, per-round
# total otherwise) and .vs {crun, runc, floor} ratios of medians; then the .targets list.
def med: if . == null then null else .median end;
def stat_of($sid): if $sid == "update" then (.steps.update // .total) else .total end;
def ratio($a; $b): if ($a == null or $b == null or $b == 0) then null else ($a / $b * 1000 | round / 1000) end;

# throughput: containers/s of bivy over the peer's at the same P; syscalls: total calls over the peer's
def tp_annotate:
  (.variants | map(select(.ok))) as $ok
  | (.parallel | min) as $p1
  | .variants |= map(. as $v
      | . + {p50_vs_p1: ratio($v.latency.p50; ([$ok[] | select(.name == $v.name and .parallel == $p1)][0].latency.p50))}
      | . + {vs: {runc: ratio($v.per_s; ([$ok[] | select(.name == "runc" and .parallel == $v.parallel)][0].per_s)),
                  crun: ratio($v.per_s; ([$ok[] | select(.name == "crun" and .parallel == $v.parallel)][0].per_s))}});
def sc_annotate:
  (.variants | map(select(.ok))) as $ok
  | .variants |= map(. as $v
      | . + {vs: {runc: ratio($v.total; ([$ok[] | select(.name == "runc")][0].total)),
                  crun: ratio($v.total; ([$ok[] | select(.name == "crun")][0].total))}});

def annotate($lc_floor):
  map(if .id == "throughput" then tp_annotate elif .id == "syscalls" then sc_annotate else . end)
  | map(if .id == "throughput" or .id == "syscalls" then . else (. as $s
    | ($s.variants | map(select(.ok)) | map({key: .name, value: (stat_of($s.id) | med)}) | from_entries) as $m
    | ([$s.variants[] | select(.ok and (.name | startswith("floor:")))][0] | if . then {name, v: (stat_of($s.id) | med)} else null end) as $f
    | (if $f then $f elif ($s.id == "csd" and $lc_floor) then $lc_floor else null end) as $floor
    | .floor = ($floor.name // null)
    | .variants |= map(. + {stat: (if .ok then stat_of($s.id) else null end)}
        | . + {vs: {crun: ratio(.stat | med; $m.crun), runc: ratio(.stat | med; $m.runc),
                    floor: ratio(.stat | med; $floor.v)}})) end);

def lcfloor: [.[] | select(.id == "lifecycle") | .variants[] | select(.ok and .name == "floor: unshare")
              | {name, v: .total.median}][0];

def find($sid; $name): [.[] | select(.id == $sid) | .variants[] | select(.name == $name)][0];

def target($scens; $where; $sid; $against; $limit; $ttl):
  ($scens // []) as $sc
  | ($sc | find($sid; "bivy")) as $b
  | (if $against == "floor" then ($sc | [.[] | select(.id == $sid) | .floor][0]) else $against end) as $aname
  | ($sc | find($sid; $against)) as $o
  | {target: $ttl, where: $where, limit: $limit}
  + if ($sc | length) == 0 then {value: null, result: "n/a", note: "tier not run"}
    elif $b == null or ($b.ok | not) then {value: null, result: "n/a", note: ("bivy: " + ($b.error // "not run"))}
    elif $against != "floor" and ($o == null or ($o.ok | not)) then {value: null, result: "n/a", note: ($against + ": " + ($o.error // "not run"))}
    elif $b.vs[$against] == null then {value: null, result: "n/a", note: "no reference"}
    else $b.vs[$against] as $v
      | {value: $v, result: (if $v <= $limit then "PASS" else "MISS" end), note: ("bivy " + ($b.stat.median * 100 | round / 100 | tostring) + " ms vs " + ($aname // $against))}
    end;

# an absolute target on a bivyd row
def abs_in($scens; $sid; $name; $limit; $ttl; $unit):
  ($scens | find($sid; $name)) as $r
  | {target: $ttl, where: "host", limit: $limit}
  + if $r == null then {value: null, result: "n/a", note: "not run"}
    elif ($r.ok | not) then {value: null, result: "n/a", note: $r.error}
    else {value: $r.total.median, unit: $unit, result: (if $r.total.median <= $limit then "PASS" else "MISS" end),
          note: (("median " + ($r.total.median * 100 | round / 100 | tostring) + " " + $unit)
                + (if $unit == "ms" then ", p90 " + ($r.total.p90 * 100 | round / 100 | tostring) + " ms" else "" end))}
    end;

def abs($scens; $name; $limit; $ttl; $unit): abs_in($scens; "bivyd"; $name; $limit; $ttl; $unit);

# throughput at the highest P: bivy's containers/s over the peer's, at least 1 (a proposed
# target: issue 17 names the figure, not a limit); syscalls of one run: at most the peer's
def tp_target($scens; $where; $against):
  ([($scens // [])[] | select(.id == "throughput")][0]) as $s
  | {where: $where, limit: ">= 1x"}
  + if $s == null then {target: "throughput >= \($against) (proposed)", value: null, result: "n/a", note: "not run"}
    else ($s.parallel | max) as $p | ([$s.variants[] | select(.name == "bivy" and .parallel == $p)][0]) as $b
      | ([$s.variants[] | select(.name == $against and .parallel == $p)][0]) as $o
      | {target: "throughput at P=\($p) >= \($against) (proposed)"}
      + if $b == null or ($b.ok | not) then {value: null, result: "n/a", note: ("bivy: " + ($b.error // "not run"))}
        elif $b.vs[$against] == null then {value: null, result: "n/a", note: ($against + ": " + ($o.error // "not run"))}
        else {value: $b.vs[$against], result: (if $b.vs[$against] >= 1 then "PASS" else "MISS" end),
              note: "bivy \($b.per_s * 10 | round / 10) vs \($o.per_s * 10 | round / 10) containers/s"} end end;
def sc_target($scens; $where; $against):
  ([($scens // [])[] | select(.id == "syscalls")][0]) as $s
  | {target: "syscalls of run <= \($against) (proposed)", where: $where, limit: "<= 1x"}
  + if $s == null then {value: null, result: "n/a", note: "not run"}
    else ([$s.variants[] | select(.name == "bivy")][0]) as $b | ([$s.variants[] | select(.name == $against)][0]) as $o
      | if $b == null or ($b.ok | not) then {value: null, result: "n/a", note: ("bivy: " + ($b.error // "not run"))}
        elif $b.vs[$against] == null then {value: null, result: "n/a", note: ($against + ": " + ($o.error // "not run"))}
        else {value: $b.vs[$against], result: (if $b.vs[$against] <= 1 then "PASS" else "MISS" end),
              note: "bivy \($b.total) vs \($o.total) calls (init \($b.init_calls) vs \($o.init_calls))"} end end;

(.scenarios | lcfloor) as $f | .scenarios |= annotate($f)
| (if (.vm | type) == "object" and .vm.scenarios then (.vm.scenarios | lcfloor) as $g | .vm.scenarios |= annotate($g) else . end)
| (.vm.scenarios // null) as $vm
| .targets = [
    target(.scenarios; "host"; "lifecycle"; "crun"; 0.5; "lifecycle <= 0.5x crun"),
    target($vm; "vm (cgroup v2)"; "lifecycle"; "crun"; 0.5; "lifecycle <= 0.5x crun"),
    target(.scenarios; "host"; "lifecycle"; "floor"; 2; "lifecycle <= 2x unshare floor"),
    target($vm; "vm (cgroup v2)"; "lifecycle"; "floor"; 2; "lifecycle <= 2x unshare floor"),
    target(.scenarios; "host"; "update"; "crun"; 0.5; "update <= 0.5x crun"),
    target($vm; "vm (cgroup v2)"; "update"; "crun"; 0.5; "update <= 0.5x crun"),
    target(.scenarios; "host"; "exec"; "crun"; 0.5; "exec <= 0.5x crun"),
    target($vm; "vm (cgroup v2)"; "exec"; "crun"; 0.5; "exec <= 0.5x crun"),
    tp_target(.scenarios; "host"; "runc"),
    tp_target($vm; "vm (cgroup v2)"; "crun"),
    sc_target(.scenarios; "host"; "runc"),
    sc_target($vm; "vm (cgroup v2)"; "crun"),
    abs(.scenarios; "bivyd restart latency"; 10; "bivyd restart latency median <= 10 ms"; "ms"),
    abs(.scenarios; "bivyd memory per instance (KiB)"; 64; "bivyd memory <= 64 KiB per instance"; "KiB"),
    abs_in(.scenarios; "autoscale"; "cpu: PSI trigger -> quota grown"; 200; "autoscale: PSI trigger -> resize applied < 200 ms"; "ms"),
    abs_in(.scenarios; "autoscale"; "memory: usage crossed 80% -> limit grown"; 200; "autoscale: memory signal -> resize applied < 200 ms"; "ms"),
    abs_in(.scenarios; "failover"; "failover: node killed -> its instances running elsewhere"; 5000; "cluster failover <= lease TTL (3 s) + 2 s"; "ms"),
    abs_in(.scenarios; "failover"; "failover over mutual TLS: node killed -> its instances running elsewhere"; 5000; "cluster failover over mutual TLS <= lease TTL (3 s) + 2 s"; "ms")
  ]
