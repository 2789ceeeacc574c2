/* tput: parallel callers for the throughput scenario of tools/bench/run.
 *
 *   tput [-p PARALLEL] [-t TIMEOUT_S] [-e ERRDIR] [-o OUT.json] LIST
 *
 * LIST has one command a line, its arguments separated by TAB (no shell). tput keeps
 * PARALLEL of them running at once (a closed loop: PARALLEL callers, each starting its next
 * command as soon as its last one exited) until every line has run once, in order. Each
 * command is started with posix_spawn and timed with CLOCK_MONOTONIC from just before the
 * spawn to its reaping (waitpid); the wall time runs from the first spawn to the last exit.
 * stdin and stdout are /dev/null; stderr goes to ERRDIR/<line>.err (or /dev/null), so a
 * caller can read what each command printed (bivy --debug lock waits, errors).
 *
 * The first command that fails (non-zero exit, signal, past TIMEOUT_S, default 60) stops
 * the start of further lines; the running ones are waited for, and the output says which
 * line failed and why (its first stderr line); exit status 1. SIGINT/SIGTERM are passed on
 * to the running commands, then tput exits 128+N without output (the caller cleans up).
 *
 * Output (JSON, to -o or stdout): {"parallel", "n" (commands run), "ok", "error",
 * "wall_ms", "per_s" (n / wall time), "samples" (ms per command, in line order)}. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "json-str.h"

extern char **environ;

#define MAX_ARGS 64
#define MAX_PAR 256

struct cmd {
  char *argv[MAX_ARGS + 1];
  double ms;
};

struct slot {
  pid_t pid;
  int idx;
  uint64_t t0;
};

static struct cmd *cmds;
static int n_cmds;
static struct slot slots[MAX_PAR];
static volatile sig_atomic_t stop_sig;

static void on_stop(int sig) { stop_sig = sig; }
static void on_tick(int sig) { (void)sig; }

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int load_list(const char *path) {
  FILE *f = fopen(path, "re");
  if (f == NULL) {
    fprintf(stderr, "tput: %s: %s\n", path, strerror(errno));
    return -1;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int cap_cmds = 0, lineno = 0;
  while ((len = getline(&line, &cap, f)) >= 0) {
    lineno++;
    if (len > 0 && line[len - 1] == '\n') line[--len] = '\0';
    if (len == 0 || line[0] == '#') continue;
    if (n_cmds == cap_cmds) {
      cap_cmds = cap_cmds ? cap_cmds * 2 : 64;
      struct cmd *nc = realloc(cmds, (size_t)cap_cmds * sizeof *cmds);
      if (nc == NULL) goto oom;
      cmds = nc;
    }
    struct cmd *c = &cmds[n_cmds];
    memset(c, 0, sizeof *c);
    char *save = NULL, *copy = strdup(line);
    if (copy == NULL) goto oom;
    int argc = 0;
    for (char *tok = strtok_r(copy, "\t", &save); tok; tok = strtok_r(NULL, "\t", &save)) {
      if (argc == MAX_ARGS) {
        fprintf(stderr, "tput: %s:%d: more than %d arguments\n", path, lineno, MAX_ARGS);
        fclose(f);
        return -1;
      }
      c->argv[argc++] = tok;
    }
    n_cmds++;
  }
  free(line);
  fclose(f);
  if (n_cmds == 0) {
    fprintf(stderr, "tput: %s: no commands\n", path);
    return -1;
  }
  return 0;
oom:
  fprintf(stderr, "tput: out of memory\n");
  fclose(f);
  return -1;
}

static pid_t spawn(int idx, const char *errdir) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  sigset_t none;
  char errpath[4096];
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  sigemptyset(&none);
  /* the child starts with default signal handling and nothing blocked */
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t dfl;
  sigemptyset(&dfl);
  sigaddset(&dfl, SIGINT);
  sigaddset(&dfl, SIGTERM);
  posix_spawnattr_setsigdefault(&attr, &dfl);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  if (errdir) {
    snprintf(errpath, sizeof errpath, "%s/%d.err", errdir, idx);
    posix_spawn_file_actions_addopen(&fa, 2, errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  } else {
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  }
  pid_t pid;
  int r = posix_spawn(&pid, cmds[idx].argv[0], &fa, &attr, cmds[idx].argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (r != 0) {
    errno = r;
    return -1;
  }
  return pid;
}

static void first_err_line(const char *errdir, int idx, char *out, size_t n) {
  out[0] = '\0';
  if (errdir == NULL) return;
  char path[4096];
  snprintf(path, sizeof path, "%s/%d.err", errdir, idx);
  FILE *f = fopen(path, "re");
  if (f == NULL) return;
  if (fgets(out, (int)n, f)) out[strcspn(out, "\n")] = '\0';
  fclose(f);
}


static void usage(FILE *o) {
  fputs("usage: tput [-p PARALLEL] [-t TIMEOUT_S] [-e ERRDIR] [-o OUT.json] LIST\n"
        "  LIST: one command a line, arguments separated by TAB; PARALLEL of them run at once\n"
        "  (default 1, at most 256); each is timed spawn -> exit (CLOCK_MONOTONIC).\n",
        o);
}

int main(int argc, char **argv) {
  int par = 1, timeout_s = 60, c;
  const char *errdir = NULL, *out = NULL;
  while ((c = getopt(argc, argv, "p:t:e:o:h")) != -1) {
    char *end;
    switch (c) {
      case 'p':
        par = (int)strtol(optarg, &end, 10);
        if (*end || par < 1 || par > MAX_PAR) {
          fprintf(stderr, "tput: -p: not a number from 1 to %d: \"%s\"\n", MAX_PAR, optarg);
          return 2;
        }
        break;
      case 't':
        timeout_s = (int)strtol(optarg, &end, 10);
        if (*end || timeout_s < 1) {
          fprintf(stderr, "tput: -t: not a positive number of seconds: \"%s\"\n", optarg);
          return 2;
        }
        break;
      case 'e': errdir = optarg; break;
      case 'o': out = optarg; break;
      case 'h': usage(stdout); return 0;
      default: usage(stderr); return 2;
    }
  }
  if (optind != argc - 1) {
    fprintf(stderr, "tput: expected one LIST (see tput -h)\n");
    return 2;
  }
  if (load_list(argv[optind]) < 0) return 2;

  struct sigaction sa = {.sa_handler = on_stop};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  /* a 100 ms tick interrupts waitpid (no SA_RESTART) to check the per-command timeouts */
  struct sigaction tick = {.sa_handler = on_tick};
  sigemptyset(&tick.sa_mask);
  sigaction(SIGALRM, &tick, NULL);
  struct itimerval iv = {{0, 100000}, {0, 100000}};
  setitimer(ITIMER_REAL, &iv, NULL);

  for (int i = 0; i < MAX_PAR; i++) slots[i].pid = 0;
  int next = 0, running = 0, done = 0, failed_idx = -1;
  char error[600] = "";
  uint64_t start = now_ns(), end = start;
  bool forwarded = false;
  while (next < n_cmds || running > 0) {
    /* fill the free callers */
    while (!stop_sig && failed_idx < 0 && next < n_cmds && running < par) {
      int s = 0;
      while (slots[s].pid != 0) s++;
      slots[s].idx = next;
      slots[s].t0 = now_ns();
      pid_t pid = spawn(next, errdir);
      if (pid < 0) {
        failed_idx = next;
        snprintf(error, sizeof error, "line %d: cannot start %s: %s", next + 1, cmds[next].argv[0], strerror(errno));
        break;
      }
      slots[s].pid = pid;
      running++;
      next++;
    }
    if (stop_sig && !forwarded) {
      for (int s = 0; s < par; s++)
        if (slots[s].pid > 0) kill(slots[s].pid, stop_sig);
      forwarded = true;
    }
    if (running == 0) break;
    int status;
    pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0 && errno == EINTR) {
      uint64_t t = now_ns();
      for (int s = 0; s < par; s++)
        if (slots[s].pid > 0 && t - slots[s].t0 > (uint64_t)timeout_s * 1000000000u) {
          kill(slots[s].pid, SIGKILL);
          if (failed_idx < 0) {
            failed_idx = slots[s].idx;
            snprintf(error, sizeof error, "line %d: timed out after %d s", slots[s].idx + 1, timeout_s);
          }
        }
      continue;
    }
    if (pid < 0) break;
    uint64_t t = now_ns();
    int s = 0;
    while (s < par && slots[s].pid != pid) s++;
    if (s == par) continue; /* not ours */
    slots[s].pid = 0;
    running--;
    end = t;
    int idx = slots[s].idx;
    cmds[idx].ms = (double)(t - slots[s].t0) / 1e6;
    done++;
    if ((!WIFEXITED(status) || WEXITSTATUS(status) != 0) && failed_idx < 0 && !stop_sig) {
      char first[400];
      failed_idx = idx;
      first_err_line(errdir, idx, first, sizeof first);
      if (WIFEXITED(status))
        snprintf(error, sizeof error, "line %d: exit %d%s%s", idx + 1, WEXITSTATUS(status), first[0] ? ": " : "", first);
      else
        snprintf(error, sizeof error, "line %d: killed by signal %d%s%s", idx + 1, WTERMSIG(status), first[0] ? ": " : "", first);
    }
  }
  if (stop_sig) return 128 + stop_sig;

  FILE *o = out ? fopen(out, "we") : stdout;
  if (o == NULL) {
    fprintf(stderr, "tput: -o %s: %s\n", out, strerror(errno));
    return 2;
  }
  double wall = (double)(end - start) / 1e6;
  fprintf(o, "{\"parallel\": %d, \"n\": %d, \"ok\": %s, \"error\": ", par, done, failed_idx < 0 ? "true" : "false");
  if (failed_idx < 0) fputs("null", o);
  else json_str(o, error);
  fprintf(o, ", \"wall_ms\": %.3f, \"per_s\": %.3f, \"samples\": [", wall, wall > 0 ? done / (wall / 1e3) : 0.0);
  for (int i = 0, k = 0; i < next; i++) fprintf(o, "%s%.3f", k++ ? ", " : "", cmds[i].ms);
  fputs("]}\n", o);
  if (o != stdout) fclose(o);
  return failed_idx < 0 ? 0 : 1;
}
