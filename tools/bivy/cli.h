/* The bivy command line: global options and the verb registry. Each verb lives in its own
 * file under tools/bivy/ and registers itself with BIVY_VERB(); main.c dispatches. */
#ifndef BIVY_CLI_H
#define BIVY_CLI_H

#include <stdbool.h>

#include "runtime/error.h"

#define BIVY_DEFAULT_ROOT "/run/bivy"
#define BIVY_DEFAULT_SOCKET "/run/bivy/bivyd.sock"

struct bivy_global {
  const char *root;       /* --root: state directory */
  const char *log_path;   /* --log */
  bool log_json;          /* --log-format json */
  bool debug;             /* --debug */
  bool systemd_cgroup;    /* --systemd-cgroup */
  const char *socket;     /* --socket / BIVY_SOCKET: bivyd control socket */
};

struct bivy_verb {
  const char *name;
  const char *summary; /* one line for `bivy --help` */
  const char *usage;   /* full help text printed by `bivy VERB --help` */
  /* argv[0] is the verb name; getopt-style parsing from argv[1]. Returns the process exit
   * status; on failure fill err and return a negative value (main prints "bivy: <msg>"). */
  int (*run)(struct bivy_global *g, int argc, char **argv, bivy_error_t *err);
};

#define BIVY_VERB(ident)                                                                     \
  static const struct bivy_verb ident;                                                       \
  __attribute__((used, section("bivy_verbs"))) static const struct bivy_verb *const ident##_ptr = \
      &ident;                                                                                \
  static const struct bivy_verb ident

/* Print a verb's usage to stdout (for --help) and return 0. */
int bivy_cli_help(const char *usage);
/* Report a usage error: fills err with "<verb>: <msg> (see 'bivy <verb> --help')". */
int bivy_cli_usage_error(bivy_error_t *err, const char *verb, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* --format ARG: `plain` (e.g. "text" or "table") or "json"; *out = arg. Usage error otherwise. */
int bivy_cli_format(const char *verb, const char *arg, const char *plain, const char **out, bivy_error_t *err);
/* True if argv contains -h/--help before any "--". */
bool bivy_cli_wants_help(int argc, char **argv);

/* Log a debug line to stderr / the --log file when --debug is on. */
void bivy_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Log a warning (always shown). */
void bivy_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

extern struct bivy_global *bivy_cli_global;

#endif
