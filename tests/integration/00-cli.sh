# The CLI frame: help and version on every verb, clear errors for bad usage.
TIERS="host v2"

test_version() {
  out=$(bivy --version)
  assert_contains "$out" "bivy version"
}

test_help_lists_verbs_and_every_verb_has_help() {
  out=$(bivy --help)
  verbs=$(sed -n '/^Commands:/,$p' <<<"$out" | awk 'NR>1 {print $1}')
  [ -n "$verbs" ] || fail "no verbs listed"
  for v in $verbs; do
    h=$(bivy "$v" --help) || fail "$v --help failed"
    assert_contains "$h" "Usage: bivy $v" "$v --help"
  done
}

test_unknown_verb_fails() {
  expect_fail 'unknown command "frobnicate"' bivy frobnicate
}

test_rootfs_create() {
  bivy rootfs create "$T/rfs"
  [ -x "$T/rfs/bin/busybox" ] || fail "no busybox"
  [ -L "$T/rfs/bin/sh" ] || fail "no sh link"
  grep -q '^root:x:0:0:' "$T/rfs/etc/passwd" || fail "no passwd"
  "$T/rfs/bin/sh" -c 'true' || fail "sh does not run"
  expect_fail "rootfs $T/rfs" bivy rootfs create "$T/rfs"
}
