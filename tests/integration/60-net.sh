# Networking (netns/): bridge + veth through libnl, leases, nftables port publishing, `bivy net`.
# Every test plays "the host" in a network namespace it creates (ip netns add), so bridges,
# veths and nft rules never touch the machine's own network; teardown deletes the namespaces.
# The container processes come from tests/helpers/netns-run (fork + unshare(CLONE_NEWNET) +
# bivy_net_setup, like `bivy create` does), with their own state root $T/nroot.
NEEDS="ip nft nsenter jq"

BB=${ROOTFS}/bin/busybox
NR=${HELPERS}/netns-run

# net_host: create this test's host namespace ($HOSTNS) and register the cleanup
net_host() {
  HOSTNS=bvh-$$-$RANDOM
  NETNS_EXTRA=""
  ip netns add "$HOSTNS"
  ip netns exec "$HOSTNS" ip link set lo up
  on_exit net_cleanup
}
net_cleanup() {
  local st
  for st in "$T"/nroot/*/state.json; do
    [ -e "$st" ] || continue
    local pid
    pid=$(jq -r .pid "$st")
    ip netns exec "$HOSTNS" "$NR" down "$T/nroot" "$(basename "$(dirname "$st")")" || true
    kill -9 "$pid" 2>/dev/null || true # the helper's own child, if down failed
  done
  local id
  if [ -d "$T/eroot" ]; then # containers of the real `bivy run`, deleted inside the host namespace
    for id in $("$BIVY" --root "$T/eroot" list -q 2>/dev/null); do
      nsenter --net="/run/netns/$HOSTNS" "$BIVY" --root "$T/eroot" delete -f "$id" || true
    done
  fi
  local ns
  for ns in $NETNS_EXTRA $HOSTNS; do ip netns del "$ns" 2>/dev/null || true; done
}
inh() { ip netns exec "$HOSTNS" "$@"; }
# up ID [netns-run options] -- CMD...: start a container, print its net state JSON
up() { local id=$1; shift; inh "$NR" up "$T/nroot" "$id" "$@"; }
down() { inh "$NR" down "$T/nroot" "$1"; }
bn() { inh "$BIVY" --root "$T/nroot" net "$@"; }
pidof_c() { jq -r .pid "$T/nroot/$1/state.json"; }
inc() { local id=$1; shift; nsenter -t "$(pidof_c "$id")" -n "$@"; }
veths() { inh ip -o link show type veth | grep -c '^[0-9]*: bv' || true; }
pub_elements() { inh nft -j list map ip bivy pub 2>/dev/null | jq '[.nftables[] | .map? | select(.) | .elem // [] | .[]] | length' || echo 0; }
leases() { bn inspect "${1:-bivy0}" | jq '.leases'; }

# a client namespace wired to the host namespace: host 192.0.2.1/24, client 192.0.2.2/24
net_client() {
  CLIENTNS=bvc-$$-$RANDOM
  NETNS_EXTRA="$NETNS_EXTRA $CLIENTNS"
  ip netns add "$CLIENTNS"
  inh ip link add hv0 type veth peer name cv0 netns "$CLIENTNS"
  inh ip addr add 192.0.2.1/24 dev hv0
  inh ip link set hv0 up
  ip netns exec "$CLIENTNS" ip addr add 192.0.2.2/24 dev cv0
  ip netns exec "$CLIENTNS" ip link set cv0 up
  ip netns exec "$CLIENTNS" ip link set lo up
}
# client_get HOST PORT: body of "GET /" (busybox nc; its wget is not usable statically)
client_get() { printf 'GET / HTTP/1.0\r\n\r\n' | ip netns exec "$CLIENTNS" timeout 5 "$BB" nc "$1" "$2" | sed '1,/^\r*$/d'; }
client_ok() { [ -n "$(client_get "$@")" ]; }
got_file() { grep -q "$2" "$1"; }

test_bridge_two_containers_talk_and_reach_gateway() {
  net_host
  a=$(up a --net bridge --hostname web-a --log "$T/a.out" -- "$BB" nc -l -p 5000)
  b=$(up b --net bridge -- sleep 600)
  ipa=$(jq -r .ip <<<"$a") ipb=$(jq -r .ip <<<"$b")
  [ "$ipa" != "$ipb" ] || fail "same address $ipa"
  assert_contains "$ipa" "10.207.0." "default subnet"
  assert_eq "$(jq -r .gateway <<<"$a")" "10.207.0.1"
  # the bridge in the host namespace carries the gateway; the real host has no bivy0
  assert_contains "$(inh ip -o addr show dev bivy0)" "10.207.0.1/24"
  ! ip link show bivy0 >/dev/null 2>&1 || fail "bivy0 exists in the real host namespace"
  # inside: eth0 with the leased address, MAC derived from it, default route via the gateway
  assert_contains "$(inc a ip -o addr show dev eth0)" "$ipa/24"
  assert_contains "$(inc a ip -o link show dev eth0)" "link/ether $(jq -r .mac <<<"$a")"
  assert_contains "$(inc a ip route show default)" "default via 10.207.0.1 dev eth0"
  assert_contains "$(inc a ip -o link show dev lo)" "UP"
  assert_eq "$(veths)" 2 "host veths"
  # TCP between the two containers over the bridge
  wait_for inc b sh -c "echo hello-over-bridge | timeout 3 $BB nc $ipa 5000"
  wait_for got_file "$T/a.out" hello-over-bridge
  # the gateway answers
  inc b "$BB" ping -c 1 -W 2 10.207.0.1 >/dev/null || fail "gateway unreachable"
  # /etc files for the container
  grep -q "^$ipa[[:space:]]web-a$" "$T/nroot/a/hosts" || fail "hosts: $(cat "$T/nroot/a/hosts")"
  [ -f "$T/nroot/a/resolv.conf" ] || fail "no resolv.conf"
  down a
  down b
  assert_eq "$(veths)" 0 "veths after delete"
  assert_eq "$(leases)" 0 "leases after delete"
}

test_none_has_only_lo() {
  net_host
  st=$(up n --net none -- sleep 600)
  assert_eq "$(jq -r .mode <<<"$st")" none
  links=$(inc n ip -o link show)
  assert_eq "$(wc -l <<<"$links")" 1 "links: $links"
  assert_contains "$links" "lo: <LOOPBACK,UP"
  [ "$(readlink /proc/"$(pidof_c n)"/ns/net)" != "$(inh readlink /proc/self/ns/net)" ] || fail "shares the host netns"
  grep -q "localhost n" "$T/nroot/n/hosts" || fail "hosts"
  [ ! -e "$T/nroot/net/bivy0" ] || fail "none mode defined a network"
  down n
}

test_ns_and_container_modes_join_the_right_namespace() {
  net_host
  X=bvx-$$-$RANDOM
  NETNS_EXTRA="$NETNS_EXTRA $X"
  ip netns add "$X"
  up j --net "ns:/run/netns/$X" -- sleep 600 >/dev/null
  want=$(stat -L -c %i "/run/netns/$X")
  assert_eq "$(stat -L -c %i /proc/"$(pidof_c j)"/ns/net)" "$want" "ns:PATH inode"
  up a --net bridge -- sleep 600 >/dev/null
  st=$(up c --net container:a -- sleep 600)
  assert_eq "$(jq -r .container <<<"$st")" a
  assert_eq "$(stat -L -c %i /proc/"$(pidof_c c)"/ns/net)" "$(stat -L -c %i /proc/"$(pidof_c a)"/ns/net)" "container:ID inode"
  # the sharer gets no interface of its own
  assert_eq "$(veths)" 1
  expect_fail "container:nosuch: no such container" up d --net container:nosuch -- true
  expect_fail "not a network namespace" up d --net ns:/proc/self/ns/mnt -- true
  [ ! -e "$T/nroot/d" ] || fail "failed create left a state dir"
}

test_parallel_creates_get_distinct_addresses_and_leave_nothing() {
  net_host
  for i in $(seq 1 30); do
    up "p$i" --net bridge -- sleep 600 >"$T/p$i.json" 2>"$T/p$i.err" &
  done
  wait
  for i in $(seq 1 30); do [ -s "$T/p$i.json" ] || fail "p$i: $(cat "$T/p$i.err")"; done
  assert_eq "$(cat "$T"/p*.json | jq -r .ip | sort -u | wc -l)" 30 "distinct addresses"
  assert_eq "$(veths)" 30
  assert_eq "$(leases)" 30
  for i in $(seq 1 30); do down "p$i" & done
  wait
  assert_eq "$(veths)" 0 "veths left"
  assert_eq "$(leases)" 0 "leases left"
  assert_eq "$(pub_elements)" 0 "nft elements left"
  bn rm bivy0
  ! inh ip link show bivy0 >/dev/null 2>&1 || fail "bridge left after net rm"
  ! inh nft list table ip bivy >/dev/null 2>&1 || fail "nft table left after the last network"
  [ ! -e "$T/nroot/net/bivy0" ] || fail "store entry left"
}

test_published_port_reachable_from_client_and_gone_after_delete() {
  net_host
  net_client
  # forwarding is a per-namespace sysctl: switched on in the test's host namespace only
  inh sysctl -qw net.ipv4.ip_forward=1
  mkdir -p "$T/www"
  echo hello-published >"$T/www/index.html"
  st=$(up web --net bridge --publish 8080:80,127.0.0.1:5353:53/udp -- "$BB" httpd -f -p 80 -h "$T/www")
  assert_eq "$(jq -c .publish <<<"$st")" '["8080:80/tcp","127.0.0.1:5353:53/udp"]'
  assert_eq "$(jq -r .ipForward <<<"$st")" true
  wait_for client_ok 192.0.2.1 8080
  assert_eq "$(client_get 192.0.2.1 8080)" hello-published
  assert_eq "$(pub_elements)" 2
  assert_eq "$(bn inspect bivy0 | jq -c '.containers[0].publish')" '["8080:80/tcp","127.0.0.1:5353:53/udp"]'
  # from the host namespace itself (output chain)
  assert_eq "$(printf 'GET / HTTP/1.0\r\n\r\n' | inh timeout 5 "$BB" nc 192.0.2.1 8080 | tail -n 1)" hello-published
  # outbound: the container reaches the client, which has no route back to 10.207/16 (masquerade)
  ip netns exec "$CLIENTNS" timeout 20 "$BB" nc -l -p 7000 >"$T/client.out" &
  wait_for inc web sh -c "echo hello-outbound | timeout 3 $BB nc 192.0.2.2 7000"
  wait_for got_file "$T/client.out" hello-outbound
  # the same host port again is refused, and the failed create leaves nothing
  expect_fail "host port 8080/tcp is already published" up web2 --net bridge --publish 9090:90,8080:81 -- sleep 600
  [ ! -e "$T/nroot/web2" ] || fail "state left"
  assert_eq "$(veths)" 1
  assert_eq "$(leases)" 1
  assert_eq "$(pub_elements)" 2
  down web
  assert_eq "$(pub_elements)" 0
  ! client_ok 192.0.2.1 8080 || fail "port still published after delete"
}

test_bad_input_fails_clearly_and_leaves_nothing() {
  net_host
  inh ip link add d0 type veth peer name d0p
  inh ip addr add 192.0.2.1/24 dev d0
  up a --net bridge:lan --subnet 10.99.0.0/24 -- sleep 600 >/dev/null
  expect_fail 'bad bridge name "bad/name"' up x --net bridge:bad/name -- true
  expect_fail 'bad bridge name "waytoolongbridgename"' up x --net bridge:waytoolongbridgename -- true
  expect_fail 'host port "0" is not a port number (1-65535)' up x --net bridge --publish 0:80 -- true
  expect_fail 'host port "65536" is not a port number (1-65535)' up x --net bridge --publish 65536:80 -- true
  expect_fail 'subnet 10.99.0.0/16 overlaps network "lan" (10.99.0.0/24)' up x --net bridge:other --subnet 10.99.0.0/16 -- true
  expect_fail 'overlaps address 192.0.2.1/24 on d0' up x --net bridge:other --subnet 192.0.2.0/25 -- true
  expect_fail 'network "lan" already has subnet 10.99.0.0/24' up x --net bridge:lan --subnet 10.98.0.0/24 -- true
  expect_fail 'annotations.org.bivy.publish: only for bridge networking' up x --net none --publish 80:80 -- true
  [ ! -e "$T/nroot/x" ] || fail "state dir left"
  [ ! -e "$T/nroot/net/other" ] || fail "network entry left"
  ! inh ip link show other >/dev/null 2>&1 || fail "bridge left"
  assert_eq "$(veths)" 1
  assert_eq "$(leases lan)" 1
  expect_fail 'network "lan" is in use by 1 container' bn rm lan
  expect_fail 'network "nosuch" does not exist' bn rm nosuch
  inh ip link show lan >/dev/null || fail "in-use bridge removed"
}

test_instance_gets_its_address_back() {
  net_host
  ip1=$(up a --net bridge -- sleep 600 | jq -r .ip)
  down a
  ipb=$(up b --net bridge -- sleep 600 | jq -r .ip)
  [ "$ipb" != "$ip1" ] || fail "a's released address went to b while others were free"
  assert_eq "$(up a --net bridge -- sleep 600 | jq -r .ip)" "$ip1" "a's address after restart"
}

test_net_cli_create_ls_inspect_rm() {
  net_host
  bn create web --subnet 10.77.0.0/24 --mtu 1400
  assert_contains "$(inh ip -o addr show dev web)" "10.77.0.1/24"
  assert_eq "$(bn ls --format json | jq -r '.[] | select(.name == "web") | .subnet')" 10.77.0.0/24
  assert_eq "$(bn inspect web | jq -r '.mtu, .leases, .bridgePresent' | tr '\n' ' ')" "1400 0 true "
  assert_contains "$(bn ls)" "web"
  expect_fail 'network "web" already exists' bn create web
  expect_fail 'host bits are set' bn create web2 --subnet 10.78.0.1/24
  expect_fail 'overlaps network "web"' bn create web2 --subnet 10.77.0.0/16
  expect_fail "--format: unknown format" bn ls --format yaml
  ip=$(up a --net bridge:web -- sleep 600 | jq -r .ip)
  assert_contains "$ip" "10.77.0."
  assert_contains "$(inc a ip -o link show dev eth0)" "mtu 1400"
  expect_fail 'in use' bn rm web
  down a
  bn rm web
  ! inh ip link show web >/dev/null 2>&1 || fail "bridge left"
  assert_eq "$(bn ls --format json)" "[]"
}

# The real lifecycle: `bivy run` with org.bivy.net=bridge wires the container before it starts
# and unwires it when it exits. (nsenter --net, not `ip netns exec`: that remounts /sys and
# would hide the cgroup hierarchies.)
test_bivy_run_bridge_end_to_end() {
  net_host
  mkbundle "$T/c1" sh -c 'ip -o addr show dev eth0; ip route'
  jqi "$T/c1/config.json" '.annotations["org.bivy.net"] = "bridge"'
  out=$(nsenter --net="/run/netns/$HOSTNS" "$BIVY" --root "$T/eroot" run -b "$T/c1" c1)
  assert_contains "$out" "inet 10.207.0.2/24"
  assert_contains "$out" "default via 10.207.0.1 dev eth0"
  assert_eq "$(veths)" 0 "veths after the container exited"
  assert_eq "$(inh "$BIVY" --root "$T/eroot" net inspect bivy0 | jq .leases)" 0 "leases after exit"
}

# The real `bivy run` joins another container's network namespace (--net container:ID) and a
# named one (--net ns:PATH), instead of making its own.
test_bivy_run_container_and_ns_modes() {
  mkbundle "$T/n1" sleep 1000
  bivy run -d -b "$T/n1" n1 >/dev/null
  want=$(readlink "/proc/$(pid_of n1)/ns/net")
  [ "$want" != "$(readlink /proc/self/ns/net)" ] || fail "n1 shares the host's netns"
  mkbundle "$T/n2" readlink /proc/self/ns/net
  (cd "$T/n2" && "$BIVY" spec --force --net container:n1 >/dev/null)
  jqi "$T/n2/config.json" --arg root "$ROOTFS" --arg cg "$(cgpath n2)" \
    '.root.path = $root | .process.args = ["readlink", "/proc/self/ns/net"] | .linux.cgroupsPath = $cg'
  assert_eq "$(bivy run -b "$T/n2" n2)" "$want" "container:n1"
  X=bvx-$$-$RANDOM
  ip netns add "$X"
  on_exit "ip netns del $X"
  (cd "$T/n2" && "$BIVY" spec --force --net "ns:/run/netns/$X" >/dev/null)
  jqi "$T/n2/config.json" --arg root "$ROOTFS" --arg cg "$(cgpath n3)" \
    '.root.path = $root | .process.args = ["readlink", "/proc/self/ns/net"] | .linux.cgroupsPath = $cg'
  assert_eq "$(bivy run -b "$T/n2" n3)" "net:[$(stat -L -c %i "/run/netns/$X")]" "ns:PATH"
  (cd "$T/n2" && "$BIVY" spec --force --net container:nosuch >/dev/null)
  jqi "$T/n2/config.json" --arg root "$ROOTFS" '.root.path = $root'
  expect_fail "nosuch" bivy run -b "$T/n2" n5
  [ ! -d "$T/root/n5" ] || fail "failed create left its state"
}

# The network's /etc/hosts comes from the state dir, bound read-only over the image's.
test_bivy_run_none_gets_hosts_file() {
  mkbundle "$T/h1"
  (cd "$T/h1" && "$BIVY" spec --force --net none >/dev/null)
  jqi "$T/h1/config.json" --arg root "$ROOTFS" --arg cg "$(cgpath h1)" \
    '.root.path = $root | .root.readonly = true | .hostname = "hosty" | .linux.cgroupsPath = $cg
     | .process.args = ["sh", "-c", "cat /etc/hosts; echo x >> /etc/hosts || echo RO; ip -o link | wc -l"]'
  out=$(bivy run -b "$T/h1" h1 2>&1)
  assert_contains "$out" "hosty"
  assert_contains "$out" "RO"
  assert_eq "$(tail -1 <<<"$out" | tr -d ' ')" "1" "only lo"
  [ ! -e "$T/root/h1" ] || fail "state left after run"
}
