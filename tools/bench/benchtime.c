/* benchtime: a small interleaved timing harness for tools/bench/run.
 *
 *   benchtime [-r ROUNDS] [-w WARMUP] [-t TIMEOUT_S] [-b BUDGET_S] [-e ERRDIR] [-o OUT.json] PLAN
 *
 * PLAN is a text file, one directive per line, fields separated by TAB:
 *   V <name>                 start a variant (a runtime in a scenario)
 *   S <label> <argv0> ...    a timed step: must exit 0, its wall time is recorded
 *   U <label> <argv0> ...    an untimed step (clean-up between rounds): exit status ignored
 * Lines starting with '#' and empty lines are ignored.
 *
 * Each round runs every variant once (A B C, B C A, ... the start rotates so no variant is
 * always first), each variant's steps in order. Warm-up rounds are run the same way and not
 * recorded. A variant whose timed step fails (non-zero exit, signal, timeout) is dropped
 * from later rounds and reported with ok=false and the step's exit status and first stderr
 * line. Children are started with posix_spawn (no shell) and timed with CLOCK_MONOTONIC;
 * stdin/stdout are /dev/null, stderr goes to ERRDIR/<variant-index>.err (or /dev/null).
 * SIGINT/SIGTERM are passed on to the running step; then benchtime exits 128+N, no output.
 *
 * -b stops after the first full round that ends past BUDGET_S seconds of measuring (the JSON
 * says how many rounds ran): for the slow emulated VM tier.
 *
 * Output (JSON, to -o or stdout): per variant the per-round total (sum of timed steps) and
 * per-label statistics (steps sharing a label are pooled): n, median, p90, mean, min, max,
 * stddev in milliseconds, plus the raw total samples. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "json-str.h"

extern char **environ;

#define MAX_VARIANTS 32
#define MAX_STEPS 32
#define MAX_ARGS 64

struct step {
  bool timed;
  char *label;
  char *argv[MAX_ARGS + 1];
  int label_idx; /* index into variant labels (timed steps) */
};

struct variant {
  char *name;
  struct step steps[MAX_STEPS];
  int n_steps;
  char *labels[MAX_STEPS];
  int n_labels;
  double *label_samples[MAX_STEPS]; /* pooled per label */
  int label_n[MAX_STEPS];
  double *totals;
  int n_totals;
  bool failed;
  char error[512];
};

static struct variant variants[MAX_VARIANTS];
static int n_variants;
static int timeout_s = 60;
static const char *errdir;
static volatile sig_atomic_t alarm_fired, stop_sig;

static void on_alarm(int sig) {
  (void)sig;
  alarm_fired = 1;
}

/* SIGINT/SIGTERM: pass the signal on to the running step, then stop without output (the
 * caller, tools/bench/run, cleans up containers and cgroups). */
static void on_stop(int sig) { stop_sig = sig; }

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *fmt, const char *arg) {
  fprintf(stderr, "benchtime: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n");
  exit(2);
}

static char *xstrdup(const char *s) {
  char *p = strdup(s);
  if (p == NULL) die("%s", "out of memory");
  return p;
}

static void parse_plan(const char *path) {
  FILE *f = fopen(path, "re");
  if (f == NULL) die("cannot open plan %s", path);
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int lineno = 0;
  while ((len = getline(&line, &cap, f)) >= 0) {
    lineno++;
    if (len > 0 && line[len - 1] == '\n') line[--len] = '\0';
    if (len == 0 || line[0] == '#') continue;
    char *fields[MAX_ARGS + 3] = {NULL};
    int nf = 0;
    char *save = NULL;
    for (char *tok = strtok_r(line, "\t", &save); tok && nf < MAX_ARGS + 2; tok = strtok_r(NULL, "\t", &save))
      fields[nf++] = tok;
    char where[64];
    snprintf(where, sizeof where, "%d", lineno);
    if (nf == 0) continue;
    if (strcmp(fields[0], "V") == 0) {
      if (nf != 2) die("plan line %s: V takes one name", where);
      if (n_variants == MAX_VARIANTS) die("plan line %s: too many variants", where);
      variants[n_variants++].name = xstrdup(fields[1]);
    } else if (strcmp(fields[0], "S") == 0 || strcmp(fields[0], "U") == 0) {
      if (n_variants == 0) die("plan line %s: step before any V", where);
      if (nf < 3) die("plan line %s: a step needs a label and a command", where);
      struct variant *v = &variants[n_variants - 1];
      if (v->n_steps == MAX_STEPS) die("plan line %s: too many steps", where);
      struct step *s = &v->steps[v->n_steps++];
      s->timed = fields[0][0] == 'S';
      s->label = xstrdup(fields[1]);
      for (int i = 2; i < nf; i++) s->argv[i - 2] = xstrdup(fields[i]);
      s->argv[nf - 2] = NULL;
      s->label_idx = -1;
      if (s->timed) {
        for (int i = 0; i < v->n_labels; i++)
          if (strcmp(v->labels[i], s->label) == 0) s->label_idx = i;
        if (s->label_idx < 0) {
          s->label_idx = v->n_labels;
          v->labels[v->n_labels++] = s->label;
        }
      }
    } else {
      die("plan line %s: unknown directive (V, S or U)", where);
    }
  }
  free(line);
  fclose(f);
  if (n_variants == 0) die("plan %s has no variants", path);
}

/* Run one step; return its wall time in ms (>= 0) or -1 on failure (msg filled). */
static double run_step(int vi, const struct step *s, char *msg, size_t msgsz) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  char errpath[4096] = "/dev/null";
  if (errdir) snprintf(errpath, sizeof errpath, "%s/%d.err", errdir, vi);
  posix_spawn_file_actions_addopen(&fa, 2, errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawnattr_t at;
  posix_spawnattr_init(&at);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);

  pid_t pid;
  double t0 = now_ms();
  int r = posix_spawn(&pid, s->argv[0], &fa, &at, s->argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  if (r != 0) {
    snprintf(msg, msgsz, "%s: cannot run %s: %s", s->label, s->argv[0], strerror(r));
    return -1;
  }
  int status;
  alarm_fired = 0;
  alarm((unsigned)timeout_s);
  pid_t w;
  bool forwarded = false;
  while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
    if (stop_sig && !forwarded) {
      kill(pid, stop_sig); /* our own child, by pid */
      forwarded = true;
    }
    if (alarm_fired) {
      kill(pid, SIGKILL); /* our own child, by pid */
      alarm_fired = 0;
      snprintf(msg, msgsz, "%s: timed out after %d s", s->label, timeout_s);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      alarm(0);
      return -1;
    }
  }
  double dt = now_ms() - t0;
  alarm(0);
  if (w < 0) {
    snprintf(msg, msgsz, "%s: waitpid: %s", s->label, strerror(errno));
    return -1;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return dt;
  char first[300] = "";
  if (errdir) {
    FILE *ef = fopen(errpath, "re");
    if (ef) {
      if (fgets(first, sizeof first, ef) == NULL) first[0] = '\0';
      first[strcspn(first, "\n")] = '\0';
      fclose(ef);
    }
  }
  if (WIFEXITED(status))
    snprintf(msg, msgsz, "%s: exit %d%s%s", s->label, WEXITSTATUS(status), first[0] ? ": " : "", first);
  else
    snprintf(msg, msgsz, "%s: killed by signal %d%s%s", s->label, WTERMSIG(status), first[0] ? ": " : "",
             first);
  return -1;
}

/* One round of one variant; record when `record`. */
static void run_variant(int vi, bool record) {
  struct variant *v = &variants[vi];
  if (v->failed) return;
  double total = 0, times[MAX_STEPS];
  for (int i = 0; i < v->n_steps; i++) {
    const struct step *s = &v->steps[i];
    char msg[480];
    double dt = run_step(vi, s, msg, sizeof msg);
    if (stop_sig) exit(128 + stop_sig);
    if (!s->timed) continue;
    if (dt < 0) {
      v->failed = true;
      snprintf(v->error, sizeof v->error, "%s", msg);
      /* run the remaining untimed clean-up steps so nothing is left behind */
      for (int j = i + 1; j < v->n_steps; j++)
        if (!v->steps[j].timed) run_step(vi, &v->steps[j], msg, sizeof msg);
      return;
    }
    times[i] = dt;
    total += dt;
  }
  if (!record) return;
  for (int i = 0; i < v->n_steps; i++) {
    const struct step *s = &v->steps[i];
    if (!s->timed) continue;
    v->label_samples[s->label_idx][v->label_n[s->label_idx]++] = times[i];
  }
  v->totals[v->n_totals++] = total;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* nearest-rank percentile of a sorted array */
static double pct(const double *s, int n, double p) {
  if (n == 0) return NAN;
  int k = (int)ceil(p / 100.0 * n);
  if (k < 1) k = 1;
  if (k > n) k = n;
  return s[k - 1];
}

static double median(const double *s, int n) {
  if (n == 0) return NAN;
  return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static void print_stats(FILE *o, double *x, int n) {
  double *s = malloc(sizeof(double) * (n ? n : 1));
  if (s == NULL) die("%s", "out of memory");
  memcpy(s, x, sizeof(double) * n);
  qsort(s, n, sizeof(double), cmp_double);
  double sum = 0, sq = 0;
  for (int i = 0; i < n; i++) sum += s[i];
  double mean = n ? sum / n : 0;
  for (int i = 0; i < n; i++) sq += (s[i] - mean) * (s[i] - mean);
  fprintf(o, "{\"n\":%d", n);
  if (n > 0)
    fprintf(o, ",\"median\":%.4f,\"p90\":%.4f,\"mean\":%.4f,\"min\":%.4f,\"max\":%.4f,\"stddev\":%.4f", median(s, n),
            pct(s, n, 90), mean, s[0], s[n - 1], n > 1 ? sqrt(sq / (n - 1)) : 0.0);
  fprintf(o, "}");
  free(s);
}


int main(int argc, char **argv) {
  int rounds = 30, warmup = 3, budget_s = 0;
  const char *out = NULL;
  int c;
  while ((c = getopt(argc, argv, "r:w:t:b:e:o:h")) != -1) {
    switch (c) {
      case 'r': rounds = atoi(optarg); break;
      case 'w': warmup = atoi(optarg); break;
      case 't': timeout_s = atoi(optarg); break;
      case 'b': budget_s = atoi(optarg); break;
      case 'e': errdir = optarg; break;
      case 'o': out = optarg; break;
      default:
        fprintf(stderr, "Usage: benchtime [-r ROUNDS] [-w WARMUP] [-t TIMEOUT_S] [-b BUDGET_S] [-e ERRDIR] [-o OUT] PLAN\n");
        return c == 'h' ? 0 : 2;
    }
  }
  if (optind != argc - 1 || rounds < 1 || warmup < 0 || timeout_s < 1) {
    fprintf(stderr, "benchtime: expected one PLAN; ROUNDS >= 1, WARMUP >= 0, TIMEOUT >= 1\n");
    return 2;
  }
  parse_plan(argv[optind]);
  struct sigaction sa = {.sa_handler = on_alarm}; /* no SA_RESTART: waitpid returns EINTR */
  sigaction(SIGALRM, &sa, NULL);
  struct sigaction st = {.sa_handler = on_stop};
  sigaction(SIGINT, &st, NULL);
  sigaction(SIGTERM, &st, NULL);

  for (int vi = 0; vi < n_variants; vi++) {
    struct variant *v = &variants[vi];
    v->totals = calloc(rounds, sizeof(double));
    for (int l = 0; l < v->n_labels; l++) {
      int per_round = 0;
      for (int i = 0; i < v->n_steps; i++) per_round += v->steps[i].timed && v->steps[i].label_idx == l;
      v->label_samples[l] = calloc((size_t)rounds * per_round, sizeof(double));
      if (v->label_samples[l] == NULL) die("%s", "out of memory");
    }
    if (v->totals == NULL) die("%s", "out of memory");
  }

  double t_start = now_ms(), t_measure = 0;
  bool tty = isatty(2);
  int done = 0;
  for (int r = 0; r < warmup + rounds; r++) {
    if (r == warmup) t_measure = now_ms();
    for (int k = 0; k < n_variants; k++) run_variant((r + k) % n_variants, r >= warmup);
    if (r >= warmup) done++;
    if (tty)
      fprintf(stderr, "\rbenchtime: round %d/%d%s", r + 1 - (r < warmup ? 0 : warmup), r < warmup ? warmup : rounds,
              r < warmup ? " (warm-up)" : "          ");
    if (budget_s > 0 && r >= warmup && now_ms() - t_measure > budget_s * 1e3) break;
  }
  if (tty) fprintf(stderr, "\r\033[K");

  FILE *o = stdout;
  if (out && (o = fopen(out, "we")) == NULL) die("cannot write %s", out);
  fprintf(o, "{\"rounds\":%d,\"rounds_planned\":%d,\"warmup\":%d,\"wall_s\":%.2f,\"variants\":[", done, rounds, warmup, (now_ms() - t_start) / 1e3);
  for (int vi = 0; vi < n_variants; vi++) {
    struct variant *v = &variants[vi];
    fprintf(o, "%s{\"name\":", vi ? "," : "");
    json_str(o, v->name);
    fprintf(o, ",\"ok\":%s,\"error\":", v->failed ? "false" : "true");
    if (v->failed) json_str(o, v->error);
    else fprintf(o, "null");
    fprintf(o, ",\"total\":");
    print_stats(o, v->totals, v->failed ? 0 : v->n_totals);
    fprintf(o, ",\"steps\":{");
    for (int l = 0; l < v->n_labels; l++) {
      fprintf(o, "%s", l ? "," : "");
      json_str(o, v->labels[l]);
      fputc(':', o);
      print_stats(o, v->label_samples[l], v->failed ? 0 : v->label_n[l]);
    }
    fprintf(o, "},\"samples\":[");
    for (int i = 0; !v->failed && i < v->n_totals; i++) fprintf(o, "%s%.4f", i ? "," : "", v->totals[i]);
    fprintf(o, "]}");
  }
  fprintf(o, "]}\n");
  if (o != stdout) fclose(o);
  return 0;
}
