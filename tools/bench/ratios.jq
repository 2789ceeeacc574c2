# Adds to each scenario variant: .stat (the figure compared: per-call for update, per-round
# total otherwise) and .vs {crun, runc, floor} ratios of medians; then the .targets list.
def med: if . == null then null else .median end;
def stat_of($sid): if $sid == "update" then (.steps.update // .total) else .total end;
def ratio($a; $b): if ($a == null or $b == null or $b == 0) then null else ($a / $b * 1000 | round / 1000) end;

def annotate($lc_floor):
  map(. as $s
    | ($s.variants | map(select(.ok)) | map({key: .name, value: (stat_of($s.id) | med)}) | from_entries) as $m
    | ([$s.variants[] | select(.ok and (.name | startswith("floor:")))][0] | if . then {name, v: (stat_of($s.id) | med)} else null end) as $f
    | (if $f then $f elif ($s.id == "csd" and $lc_floor) then $lc_floor else null end) as $floor
    | .floor = ($floor.name // null)
    | .variants |= map(. + {stat: (if .ok then stat_of($s.id) else null end)}
        | . + {vs: {crun: ratio(.stat | med; $m.crun), runc: ratio(.stat | med; $m.runc),
                    floor: ratio(.stat | med; $floor.v)}}));

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
    abs(.scenarios; "bivyd restart latency"; 10; "bivyd restart latency median <= 10 ms"; "ms"),
    abs(.scenarios; "bivyd memory per instance (KiB)"; 64; "bivyd memory <= 64 KiB per instance"; "KiB"),
    abs_in(.scenarios; "autoscale"; "cpu: PSI trigger -> quota grown"; 200; "autoscale: PSI trigger -> resize applied < 200 ms"; "ms"),
    abs_in(.scenarios; "autoscale"; "memory: usage crossed 80% -> limit grown"; 200; "autoscale: memory signal -> resize applied < 200 ms"; "ms"),
    abs_in(.scenarios; "failover"; "failover: node killed -> its instances running elsewhere"; 5000; "cluster failover <= lease TTL (3 s) + 2 s"; "ms"),
    abs_in(.scenarios; "failover"; "failover over mutual TLS: node killed -> its instances running elsewhere"; 5000; "cluster failover over mutual TLS <= lease TTL (3 s) + 2 s"; "ms")
  ]
