test_container_try() {
  mkbundle "$T/c1" sh -c 'grep "^Seccomp:" /proc/self/status; unshare -m true; echo unshare=$?; echo ok'
  jq '.linux.seccomp.defaultAction, .process.noNewPrivileges' "$T/c1/config.json"
  bivy run -b "$T/c1" c1
}
