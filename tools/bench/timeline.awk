# strace -f -ttt output -> JSON array of key events [{t: ms since the first line, what}].
# Repeated events (mounts) are summarised as first/last with a count.
function ev(t, w) { gsub(/"/, "\\\"", w); out[n++] = sprintf("{\"t\":%.3f,\"what\":\"%s\"}", (t - t0) * 1000, w) }
{
  pid = $1; t = $2 + 0
  if (NR == 1) t0 = t
  last = t; line = $0
  sub(/^[0-9]+ +[0-9.]+ +/, "", line)
  if (line ~ /^<\.\.\./) next            # resumed halves: the start was already counted
  if (line ~ /^execve\(/) {
    if (line ~ /= -1 /) next                # failed PATH lookups
    split(line, a, "\""); ev(t, "execve " a[2] " (pid " pid ")")
    if (a[2] ~ /\/true$/) cpid = pid
  } else if (line ~ /^(clone3?|unshare)\(/ && line ~ /CLONE_NEW/) {
    f = line; gsub(/[^A-Z_|]+/, " ", f); m = ""
    nf = split(f, parts, /[ |]+/)
    for (i = 1; i <= nf; i++) if (parts[i] ~ /^CLONE_NEW/) m = m (m ? "|" : "") substr(parts[i], 10)
    ev(t, substr(line, 1, index(line, "(") - 1) " new namespaces " m " (pid " pid ")")
  } else if (line ~ /^setns\(/ && !seen_setns++) {
    ev(t, "first setns (pid " pid ")")
  } else if (line ~ /^(mount|fsmount|move_mount|open_tree|mount_setattr)\(/ && line !~ /= -1 /) {
    if (!nmount++) ev(t, "first mount (pid " pid ")")
    lastmount = t
  } else if (line ~ /^pivot_root\(/) {
    ev(t, "pivot_root (pid " pid ")")
  } else if ((line ~ /^seccomp\(SECCOMP_SET_MODE_FILTER/ || line ~ /^prctl\(PR_SET_SECCOMP/) &&
             line !~ /= -1 / && line !~ /unfinished/) {
    ev(t, "seccomp filter loaded (pid " pid ")")
  } else if (line ~ /^exit_group\(/ && pid == cpid && !cexit++) {
    ev(t, "container process exits (pid " pid ")")
  }
}
END {
  if (nmount > 1) ev(lastmount, "last mount (" nmount " mount calls in all: mount, fsmount, move_mount, open_tree, mount_setattr)")
  ev(last, "last syscall of the runtime")
  # sort by time
  for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) {
    split(out[i], x, /[:,]/); split(out[j], y, /[:,]/)
    if (y[2] + 0 < x[2] + 0) { tmp = out[i]; out[i] = out[j]; out[j] = tmp }
  }
  printf "["; for (i = 0; i < n; i++) printf "%s%s", (i ? "," : ""), out[i]; print "]"
}
