# bivy spec and bivy features: the files and documents they produce.
TIERS="host"

test_spec_writes_runc_like_config() {
  mkdir -p "$T/b"
  (cd "$T/b" && bivy spec)
  local c=$T/b/config.json
  jq -e . "$c" >/dev/null || fail "not JSON"
  assert_eq "$(jq -r .ociVersion "$c")" "1.2.0"
  assert_eq "$(jq -r .process.terminal "$c")" "false" "terminal is off by default"
  assert_eq "$(jq -c .process.args "$c")" '["sh"]'
  assert_eq "$(jq -r .root.path "$c")" "rootfs"
  assert_eq "$(jq -r .root.readonly "$c")" "true"
  assert_eq "$(jq -r .process.noNewPrivileges "$c")" "true"
  assert_eq "$(jq -c '.process.capabilities.bounding' "$c")" '["CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE"]'
  assert_eq "$(jq -c '[.linux.namespaces[].type]' "$c")" '["pid","network","ipc","uts","mount","cgroup"]'
  assert_eq "$(jq -c '[.mounts[].destination]' "$c")" \
    '["/proc","/dev","/dev/pts","/dev/shm","/dev/mqueue","/sys","/sys/fs/cgroup"]'
  assert_eq "$(jq -r '.linux.maskedPaths | index("/proc/kcore") != null' "$c")" "true"
  # safe by default: the built-in seccomp profile is embedded
  assert_eq "$(jq -r '.linux.seccomp.defaultAction != null' "$c")" "true" "default seccomp profile"
}

test_spec_output_parses_with_bivy_parser() {
  mkdir -p "$T/b" "$T/r"
  bivy spec -b "$T/b"
  ln -s "$ROOTFS" "$T/b/rootfs"
  out=$("$HELPERS/config-parse" "$T/b")
  assert_eq "$(jq -r .root <<<"$out")" "$T/b/rootfs" "root.path resolved against the bundle"
  assert_eq "$(jq -c .namespaces <<<"$out")" '["pid","network","ipc","uts","mount","cgroup"]'
  assert_eq "$(jq -r .mounts <<<"$out")" "7"
  # MS_NOSUID|MS_NODEV|MS_NOEXEC|MS_RDONLY for /sys
  assert_eq "$(jq -r .sysFlags <<<"$out")" "15"
  bivy spec -b "$T/r" --rootless
  ln -s "$ROOTFS" "$T/r/rootfs"
  out=$("$HELPERS/config-parse" "$T/r")
  assert_eq "$(jq -r .uidMappings <<<"$out")" "1"
  # and the parser rejects what it must, naming the field
  jqi "$T/b/config.json" '.linux.namespaces += [{"type": "bogus"}]'
  expect_fail 'config.json: linux.namespaces[6].type: unknown namespace "bogus"' "$HELPERS/config-parse" "$T/b"
  rm "$T/b/rootfs"
  expect_fail "config.json: root.path: $T/b/rootfs: No such file or directory" "$HELPERS/config-parse" "$T/b"
}

test_spec_refuses_overwrite_without_force() {
  mkdir -p "$T/b"
  echo '{"mine": true}' >"$T/b/config.json"
  expect_fail "already exists (use --force to overwrite)" bivy spec -b "$T/b"
  assert_eq "$(jq -r .mine "$T/b/config.json")" "true" "existing config untouched"
  bivy spec -b "$T/b" --force
  assert_eq "$(jq -r .ociVersion "$T/b/config.json")" "1.2.0"
  [ "$(ls "$T/b")" = "config.json" ] || fail "temporary files left: $(ls "$T/b")"
}

test_spec_bundle_must_exist() {
  expect_fail "bundle $T/nope" bivy spec -b "$T/nope"
  [ ! -e "$T/nope" ] || fail "created the bundle dir"
}

test_spec_rootless_has_user_namespace() {
  mkdir -p "$T/b"
  bivy spec --rootless -b "$T/b"
  local c=$T/b/config.json
  assert_eq "$(jq -c '[.linux.namespaces[].type] | sort' "$c")" '["cgroup","ipc","mount","pid","user","uts"]'
  assert_eq "$(jq -c '.linux.uidMappings' "$c")" "[{\"containerID\":0,\"hostID\":$(id -u),\"size\":1}]"
  assert_eq "$(jq -c '.linux.gidMappings' "$c")" "[{\"containerID\":0,\"hostID\":$(id -g),\"size\":1}]"
  assert_eq "$(jq -r '.mounts[] | select(.destination == "/sys") | .options[0]' "$c")" "rbind"
  assert_not_contains "$(jq -c '.mounts' "$c")" "gid=5"
  assert_eq "$(jq -r '.linux.resources' "$c")" "null"
  bivy spec --rootless -b "$T/b" --force --net none
  assert_eq "$(jq -r '[.linux.namespaces[].type] | index("network") != null' "$c")" "true" "none keeps an isolated netns"
}

test_spec_seccomp_choices() {
  mkdir -p "$T/b"
  bivy spec -b "$T/b" --seccomp unconfined
  assert_eq "$(jq -r '.linux.seccomp' "$T/b/config.json")" "null"
  echo '{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}' >"$T/prof.json"
  bivy spec -b "$T/b" --force --seccomp "$T/prof.json"
  assert_eq "$(jq -r '.linux.seccomp.defaultAction' "$T/b/config.json")" "SCMP_ACT_ERRNO"
  echo '{"syscalls": []}' >"$T/bad.json"
  expect_fail "expected an OCI linux.seccomp object with a defaultAction" bivy spec -b "$T/b" --force --seccomp "$T/bad.json"
  expect_fail 'neither a built-in profile nor a file' bivy spec -b "$T/b" --force --seccomp no-such-profile
}

test_spec_net_and_publish_annotations() {
  mkdir -p "$T/b"
  bivy spec -b "$T/b" --net bridge:br-test --publish 8080:80 --publish 127.0.0.1:5353:53/udp
  local c=$T/b/config.json
  assert_eq "$(jq -r '.annotations["org.bivy.net"]' "$c")" "bridge:br-test"
  assert_eq "$(jq -r '.annotations["org.bivy.publish"]' "$c")" "8080:80,127.0.0.1:5353:53/udp"
  ln -s "$ROOTFS" "$T/b/rootfs"
  assert_eq "$("$HELPERS/config-parse" "$T/b" | jq -r .net)" "bridge:br-test" "annotation seen by the parser"
  bivy spec -b "$T/b" --force --net host
  assert_eq "$(jq -r '[.linux.namespaces[].type] | index("network")' "$c")" "null" "host drops the network ns"
  bivy spec -b "$T/b" --force --publish '10.0.0.1:8443:443/tcp'
  assert_eq "$(jq -r '.annotations["org.bivy.net"]' "$c")" "bridge" "publish implies bridge"
  expect_fail '--net: unknown mode "wifi"' bivy spec -b "$T/b" --force --net wifi
  expect_fail '--net: invalid bridge name "-x"' bivy spec -b "$T/b" --force --net bridge:-x
  expect_fail '--publish: expected [HOSTIP:]HOSTPORT:CTRPORT' bivy spec -b "$T/b" --force --publish 80
  expect_fail '--net: ns:PATH needs an absolute path' bivy spec -b "$T/b" --force --net ns:rel
  expect_fail '--publish: ports must be 1-65535' bivy spec -b "$T/b" --force --publish 0:80
  expect_fail '--publish: ports must be 1-65535' bivy spec -b "$T/b" --force --publish 80:65536
  expect_fail '--publish: protocol "sctp"' bivy spec -b "$T/b" --force --publish 80:80/sctp
  expect_fail '--publish: invalid IPv4 address "300.1.1.1"' bivy spec -b "$T/b" --force --publish 300.1.1.1:80:80
  expect_fail '--publish needs --net bridge' bivy spec -b "$T/b" --force --net none --publish 80:80
  expect_fail 'cannot work with --rootless' bivy spec -b "$T/b" --force --rootless --publish 80:80
  # nothing was written by the failed calls: the last good config is intact
  assert_eq "$(jq -r '.annotations["org.bivy.publish"]' "$c")" "10.0.0.1:8443:443/tcp"
}

test_features_is_valid_json_with_namespaces() {
  out=$(bivy features)
  jq -e . <<<"$out" >/dev/null || fail "features is not JSON"
  assert_eq "$(jq -c '.linux.namespaces | sort' <<<"$out")" \
    '["cgroup","ipc","mount","network","pid","time","user","uts"]'
  assert_eq "$(jq -r .ociVersionMax <<<"$out")" "1.2.0"
  assert_eq "$(jq -r '.linux.capabilities | index("CAP_SYS_ADMIN") != null' <<<"$out")" "true"
  assert_eq "$(jq -r '.mountOptions | index("rbind") != null' <<<"$out")" "true"
  assert_eq "$(jq -r '.hooks | length' <<<"$out")" "6"
  assert_eq "$(jq -r '.linux.cgroup.systemd' <<<"$out")" "false"
  assert_eq "$(jq -r '.linux.seccomp.operators | index("SCMP_CMP_MASKED_EQ") != null' <<<"$out")" "true"
  expect_fail '--format: unknown format "yaml"' bivy features --format yaml
}
