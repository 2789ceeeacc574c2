/* bivy: entry point, global options, dispatch to the verb files. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/util.h"
#include "tools/bivy/cli.h"

#ifndef BIVY_VERSION
#define BIVY_VERSION "0.1.0"
#endif

extern const struct bivy_verb *const __start_bivy_verbs[];
extern const struct bivy_verb *const __stop_bivy_verbs[];

struct bivy_global *bivy_cli_global;
static FILE *log_file;

static const struct bivy_verb *find_verb(const char *name) {
  for (const struct bivy_verb *const *v = __start_bivy_verbs; v < __stop_bivy_verbs; v++)
    if (strcmp((*v)->name, name) == 0) return *v;
  return NULL;
}

static int cmp_verbs(const void *a, const void *b) {
  return strcmp((*(const struct bivy_verb *const *)a)->name, (*(const struct bivy_verb *const *)b)->name);
}

static void print_main_help(FILE *out) {
  fprintf(out,
          "Usage: bivy [GLOBAL OPTIONS] COMMAND [OPTIONS] [ARGS]\n"
          "\n"
          "bivy is a lightweight OCI container runtime.\n"
          "\n"
          "Global options:\n"
          "  --root DIR            state directory (default " BIVY_DEFAULT_ROOT ")\n"
          "  --log FILE            also write errors (and --debug output) to FILE\n"
          "  --log-format FMT      text (default) or json, for --log\n"
          "  --debug               print debug messages, start-up time stamps and lock waits\n"
          "  --systemd-cgroup      accepted for runc compatibility; bivy manages cgroupfs itself\n"
          "  --socket PATH         bivyd control socket (default $BIVY_SOCKET or " BIVY_DEFAULT_SOCKET ")\n"
          "  --version             print the version\n"
          "  -h, --help            this help; 'bivy COMMAND --help' for a command\n"
          "\nCommands:\n");
  size_t n = (size_t)(__stop_bivy_verbs - __start_bivy_verbs);
  const struct bivy_verb *sorted[n ? n : 1];
  memcpy(sorted, __start_bivy_verbs, n * sizeof(sorted[0]));
  qsort(sorted, n, sizeof(sorted[0]), cmp_verbs);
  for (size_t i = 0; i < n; i++) fprintf(out, "  %-12s %s\n", sorted[i]->name, sorted[i]->summary);
}

static void json_escape(FILE *out, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
    else if (c < 0x20) fprintf(out, "\\u%04x", c);
    else fputc(c, out);
  }
}

static void log_line(const char *level, const char *msg) {
  if (log_file == NULL) return;
  if (bivy_cli_global && bivy_cli_global->log_json) {
    char ts[64];
    time_t now = time(NULL);
    struct tm tm;
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    fprintf(log_file, "{\"level\":\"%s\",\"msg\":\"", level);
    json_escape(log_file, msg);
    fprintf(log_file, "\",\"time\":\"%s\"}\n", ts);
  } else {
    fprintf(log_file, "%s: %s\n", level, msg);
  }
  fflush(log_file);
}

static void vlog(const char *level, bool to_stderr, const char *fmt, va_list ap) {
  _cleanup_free_ char *msg = NULL;
  if (vasprintf(&msg, fmt, ap) < 0) return;
  if (to_stderr) fprintf(stderr, "bivy: %s%s\n", strcmp(level, "warning") == 0 ? "warning: " : "", msg);
  log_line(level, msg);
}

void bivy_debug(const char *fmt, ...) {
  if (bivy_cli_global == NULL || !bivy_cli_global->debug) return;
  va_list ap;
  va_start(ap, fmt);
  vlog("debug", true, fmt, ap);
  va_end(ap);
}

void bivy_warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog("warning", true, fmt, ap);
  va_end(ap);
}

int bivy_cli_help(const char *usage) {
  fputs(usage, stdout);
  return 0;
}

int bivy_cli_usage_error(bivy_error_t *err, const char *verb, const char *fmt, ...) {
  _cleanup_free_ char *msg = NULL;
  va_list ap;
  va_start(ap, fmt);
  int n = vasprintf(&msg, fmt, ap);
  va_end(ap);
  return bivy_error(err, 0, "%s: %s (see 'bivy %s --help')", verb, n >= 0 ? msg : "bad usage", verb);
}

int bivy_cli_format(const char *verb, const char *arg, const char *plain, const char **out, bivy_error_t *err) {
  if (strcmp(arg, plain) != 0 && strcmp(arg, "json") != 0)
    return bivy_cli_usage_error(err, verb, "--format: unknown format \"%s\" (%s or json)", arg, plain);
  *out = arg;
  return 0;
}

bool bivy_cli_wants_help(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) return false;
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) return true;
  }
  return false;
}

int main(int argc, char **argv) {
  static struct bivy_global g = {.root = BIVY_DEFAULT_ROOT};
  bivy_cli_global = &g;
  g.socket = getenv("BIVY_SOCKET");
  if (g.socket == NULL || *g.socket == '\0') g.socket = BIVY_DEFAULT_SOCKET;

  enum { OPT_ROOT = 256, OPT_LOG, OPT_LOG_FORMAT, OPT_DEBUG, OPT_SYSTEMD, OPT_SOCKET, OPT_VERSION,
         OPT_CRIU, OPT_ROOTLESS };
  static const struct option opts[] = {
      {"root", required_argument, NULL, OPT_ROOT},
      {"log", required_argument, NULL, OPT_LOG},
      {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
      {"debug", no_argument, NULL, OPT_DEBUG},
      {"systemd-cgroup", no_argument, NULL, OPT_SYSTEMD},
      {"socket", required_argument, NULL, OPT_SOCKET},
      {"version", no_argument, NULL, OPT_VERSION},
      {"criu", required_argument, NULL, OPT_CRIU},         /* runc compat: ignored */
      {"rootless", required_argument, NULL, OPT_ROOTLESS}, /* runc compat: ignored */
      {"help", no_argument, NULL, 'h'},
      {0, 0, 0, 0}};
  const char *log_format = "text";
  int c;
  /* '+': stop at the first non-option (the verb) */
  while ((c = getopt_long(argc, argv, "+hv", opts, NULL)) != -1) {
    switch (c) {
      case OPT_ROOT: g.root = optarg; break;
      case OPT_LOG: g.log_path = optarg; break;
      case OPT_LOG_FORMAT: log_format = optarg; break;
      case OPT_DEBUG: g.debug = true; break;
      case OPT_SYSTEMD: g.systemd_cgroup = true; break;
      case OPT_SOCKET: g.socket = optarg; break;
      case OPT_CRIU: case OPT_ROOTLESS: break;
      case 'v':
      case OPT_VERSION:
        printf("bivy version %s\nspec: 1.2.0\n", BIVY_VERSION);
        return 0;
      case 'h': print_main_help(stdout); return 0;
      default: fprintf(stderr, "bivy: see 'bivy --help'\n"); return 2;
    }
  }
  if (strcmp(log_format, "json") == 0) g.log_json = true;
  else if (strcmp(log_format, "text") != 0) {
    fprintf(stderr, "bivy: --log-format: unknown format \"%s\" (text or json)\n", log_format);
    return 2;
  }
  if (g.log_path) {
    log_file = fopen(g.log_path, "ae");
    if (log_file == NULL) {
      fprintf(stderr, "bivy: --log %s: %s\n", g.log_path, strerror(errno));
      return 1;
    }
  }
  if (optind >= argc) {
    print_main_help(stderr);
    return 2;
  }
  const struct bivy_verb *verb = find_verb(argv[optind]);
  if (verb == NULL) {
    fprintf(stderr, "bivy: unknown command \"%s\" (see 'bivy --help')\n", argv[optind]);
    return 2;
  }
  if (g.systemd_cgroup)
    bivy_warn("--systemd-cgroup cannot be honoured: bivy manages cgroups through cgroupfs directly");
  int vargc = argc - optind;
  char **vargv = argv + optind;
  if (bivy_cli_wants_help(vargc, vargv)) return bivy_cli_help(verb->usage);
  optind = 0; /* verbs parse with getopt from argv[1]; 0 re-initialises getopt (drops the "+" mode) */
  _cleanup_error_ bivy_error_t err = NULL;
  int r = verb->run(&g, vargc, vargv, &err);
  if (g.debug) {
    /* lock contention between concurrent bivy calls (read by tools/bench/run, throughput) */
    struct bivy_lock_stats ls = bivy_lock_stats();
    bivy_debug("locks: %s: %u taken, %u contended, %.3f ms waiting", verb->name, ls.taken, ls.contended,
               (double)ls.wait_ns / 1e6);
  }
  if (r < 0) {
    const char *msg = err && err->msg ? err->msg : strerror(-r);
    fprintf(stderr, "bivy: %s\n", msg);
    log_line("error", msg);
    return 1;
  }
  return r;
}
