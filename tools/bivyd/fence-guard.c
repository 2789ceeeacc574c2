/* bivyd layer 4 (cluster): the fence guard, a small child of bivyd that outlives it. bivyd fences its instances
 * itself when it cannot renew its lease, but a bivyd that is killed (SIGKILL, a crash)
 * fences nothing, while its lease expires and other nodes start its instances again. So
 * after each renewal bivyd tells the guard, over a pipe, the instances' inits and each one's
 * own deadline (its failover policy's), the earliest first ("EARLIEST PID:START:DEADLINE
 * ...\n", CLOCK_MONOTONIC milliseconds); when a deadline passes without a newer line — bivyd
 * is dead or stuck — the guard SIGKILLs the inits whose deadline passed (each is pid 1 of its
 * pid namespace: the whole instance goes), waits for the next one, and once bivyd is gone
 * (end of file) and nothing is left to kill, exits. "0\n" disarms it (bivyd leaving the
 * cluster cleanly). */
#include "tools/bivyd/fence-guard.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/state.h"
#include "runtime/util.h"
#include "runtime/cleanup.h"
#include "tools/bivyd/conf.h"
#include "tools/bivyd/daemon-log.h"

static int guard_fd = -1;
static char last[8192];

static uint64_t mono_ms(void) { return bivy_now_ns() / 1000000; }

/* kill the listed inits whose deadline is at or before now; the next deadline, 0 = none */
static uint64_t kill_due(const char *line, uint64_t now) {
  const char *p = strchr(line, ' ');
  uint64_t next = 0;
  while (p && *p) {
    int pid = 0;
    unsigned long long start = 0, now_start = 0, due = 0;
    int n = 0;
    if (sscanf(p, " %d:%llu:%llu%n", &pid, &start, &due, &n) != 3) break;
    p += n;
    if (due > now) {
      if (next == 0 || due < next) next = due;
      continue;
    }
    /* the same process (not a reused pid): it is an instance init whose claim may expire */
    if (pid > 1 && bivy_proc_start_time(pid, &now_start) == 0 && now_start == start) kill(pid, SIGKILL);
  }
  return next;
}

static void __attribute__((noreturn)) guard_main(int fd) {
  prctl(PR_SET_NAME, "bivyd-fence", 0, 0, 0);
  signal(SIGTERM, SIG_DFL); /* bivyd's handlers write to its (closed) signal pipe */
  signal(SIGINT, SIG_DFL);
  signal(SIGHUP, SIG_DFL);
  char buf[sizeof last], line[sizeof last] = "";
  size_t len = 0;
  uint64_t deadline = 0;
  bool eof = false, fired = false;
  for (;;) {
    int timeout = -1;
    if (deadline && !fired) {
      uint64_t now = mono_ms();
      timeout = now >= deadline ? 0 : (int)(deadline - now);
    }
    if (eof && (fired || deadline == 0)) _exit(0);
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    int r = eof ? (timeout > 0 ? (usleep((useconds_t)timeout * 1000), 0) : 0) : poll(&pf, 1, timeout);
    if (r < 0 && errno != EINTR) _exit(1);
    if (r > 0) {
      ssize_t k = read(fd, buf + len, sizeof buf - 1 - len);
      if (k <= 0) {
        eof = true;
        continue;
      }
      len += (size_t)k;
      char *nl;
      while ((nl = memchr(buf, '\n', len))) {
        *nl = '\0';
        snprintf(line, sizeof line, "%s", buf);
        len -= (size_t)(nl + 1 - buf);
        memmove(buf, nl + 1, len);
        deadline = strtoull(line, NULL, 10);
        fired = false;
      }
      if (len == sizeof buf - 1) len = 0; /* an over-long line: drop it */
      continue;
    }
    if (deadline && !fired && mono_ms() >= deadline) {
      uint64_t next = kill_due(line, mono_ms());
      if (next) deadline = next;
      else fired = true;
    }
  }
}

/* The guards of earlier bivyds of this state dir, from STATE/fence-guards ("PID START" lines):
 * a bivyd that was killed leaves its guard armed with the deadlines it last sent. Once the
 * new bivyd has joined, every instance is re-adopted under its own guard (same lease) or was
 * removed (new lease), so the old guard's deadlines would only kill re-adopted instances. */
static struct {
  pid_t pid;
  unsigned long long start;
} old_guards[8];
static size_t n_old;
static pid_t my_pid;
static unsigned long long my_start;

static char *guards_path(void) {
  char *p = NULL;
  return asprintf(&p, "%s/fence-guards", D.state_dir) < 0 ? NULL : p;
}

static void guards_write(bool with_old) {
  _cleanup_free_ char *p = guards_path(), *tmp = NULL;
  if (p == NULL || asprintf(&tmp, "%s.tmp", p) < 0) return;
  _cleanup_fclose_ FILE *f = fopen(tmp, "we");
  if (f == NULL) return;
  for (size_t i = 0; with_old && i < n_old; i++) fprintf(f, "%d %llu\n", (int)old_guards[i].pid, old_guards[i].start);
  fprintf(f, "%d %llu\n", (int)my_pid, my_start);
  if (fflush(f) == 0) rename(tmp, p);
}

void fence_guard_retire_old(void) {
  if (n_old == 0) return;
  for (size_t i = 0; i < n_old; i++) {
    unsigned long long st = 0;
    /* only that very process (the pid may be reused), and only a guard: its start time */
    if (bivy_proc_start_time(old_guards[i].pid, &st) == 0 && st == old_guards[i].start) {
      kill(old_guards[i].pid, SIGKILL);
      bivyd_log("cluster: retired the fence guard %d of a previous bivyd (its instances are ours now)", (int)old_guards[i].pid);
    }
  }
  n_old = 0;
  guards_write(false);
}

static void guards_read(void) {
  _cleanup_free_ char *p = guards_path();
  _cleanup_fclose_ FILE *f = p ? fopen(p, "re") : NULL;
  int pid;
  unsigned long long st, now_st;
  n_old = 0;
  while (f && n_old < sizeof old_guards / sizeof old_guards[0] && fscanf(f, "%d %llu", &pid, &st) == 2)
    if (pid > 1 && bivy_proc_start_time(pid, &now_st) == 0 && now_st == st) old_guards[n_old++] = (typeof(old_guards[0])){pid, st};
}

int fence_guard_start(bivy_error_t *err) {
  guards_read();
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return bivy_error_errno(err, "fence guard: pipe2");
  pid_t pid = fork();
  if (pid < 0) {
    close(p[0]);
    close(p[1]);
    return bivy_error_errno(err, "fence guard: fork");
  }
  if (pid == 0) {
    /* nothing of bivyd's: not the state-dir lock (a new bivyd must get it), not the socket */
    if (p[0] != 3 && dup2(p[0], 3) < 0) _exit(1);
    syscall(SYS_close_range, 4, ~0U, 0);
    guard_main(3);
  }
  close(p[0]);
  fcntl(p[1], F_SETFL, O_NONBLOCK); /* bivyd never blocks on it */
  guard_fd = p[1];
  my_pid = pid;
  bivy_proc_start_time(pid, &my_start);
  guards_write(true);
  bivyd_log("cluster: fence guard pid %d", (int)pid);
  return 0;
}

void fence_guard_update(bool armed, const struct fence_target *t, size_t n) {
  if (guard_fd < 0) return;
  uint64_t earliest = 0;
  for (size_t i = 0; i < n && armed; i++)
    if (t[i].pid > 1 && (earliest == 0 || t[i].deadline < earliest)) earliest = t[i].deadline;
  char line[sizeof last];
  size_t off = (size_t)snprintf(line, sizeof line, "%llu", (unsigned long long)earliest);
  for (size_t i = 0; i < n && earliest; i++) {
    if (t[i].pid <= 1 || off + 72 >= sizeof line) continue;
    off += (size_t)snprintf(line + off, sizeof line - off, " %d:%llu:%llu", (int)t[i].pid, t[i].start,
                            (unsigned long long)t[i].deadline);
  }
  line[off++] = '\n';
  line[off] = '\0';
  /* only the instances changed: the deadline is re-sent after each renewal anyway */
  if (strcmp(line, last) == 0) return;
  if (write(guard_fd, line, off) == (ssize_t)off) snprintf(last, sizeof last, "%s", line);
}
