/* bivy exec: run a process in a running container. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cleanup.h"
#include "runtime/container.h"
#include "runtime/util.h"
#include "tools/bivy/cli.h"

static int push(char ***v, size_t *n, char *s) {
  char **nv = realloc(*v, (*n + 2) * sizeof **v);
  if (nv == NULL) return -1;
  nv[(*n)++] = s;
  nv[*n] = NULL;
  *v = nv;
  return 0;
}

static int parse_user(const char *s, struct bivy_exec_opts *o) {
  _cleanup_free_ char *u = strdup(s);
  if (u == NULL) return -1;
  char *colon = strchr(u, ':');
  if (colon) *colon = '\0';
  int64_t v;
  if (bivy_parse_i64(u, &v) < 0 || v < 0 || v > 4294967294LL) return -1;
  o->uid = (uid_t)v;
  o->has_user = true;
  if (colon) {
    if (bivy_parse_i64(colon + 1, &v) < 0 || v < 0 || v > 4294967294LL) return -1;
    o->gid = (gid_t)v;
    o->has_gid = true;
  }
  return 0;
}

static int run_exec(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  static const struct option opts[] = {{"process", required_argument, NULL, 'p'},
                                       {"tty", no_argument, NULL, 't'},
                                       {"console-socket", required_argument, NULL, 'c'},
                                       {"env", required_argument, NULL, 'e'},
                                       {"cwd", required_argument, NULL, 'w'},
                                       {"user", required_argument, NULL, 'u'},
                                       {"cap", required_argument, NULL, 'C'},
                                       {"detach", no_argument, NULL, 'd'},
                                       {"pid-file", required_argument, NULL, 'F'},
                                       {"preserve-fds", required_argument, NULL, 'P'},
                                       {0, 0, 0, 0}};
  struct bivy_exec_opts o = {.root = g->root, .debug = g->debug ? bivy_debug : NULL};
  _cleanup_free_ char **env = NULL, **caps = NULL;
  size_t nenv = 0, ncaps = 0;
  int c;
  int64_t n;
  while ((c = getopt_long(argc, argv, "+p:tc:e:u:d", opts, NULL)) != -1) {
    switch (c) {
      case 'p': o.process_file = optarg; break;
      case 't': o.tty = true; break;
      case 'c': o.console_socket = optarg; break;
      case 'e':
        if (strchr(optarg, '=') == NULL || optarg[0] == '=')
          return bivy_cli_usage_error(err, "exec", "--env: expected KEY=VALUE, got \"%s\"", optarg);
        if (push(&env, &nenv, optarg) < 0) return bivy_error(err, ENOMEM, "exec");
        break;
      case 'w':
        if (optarg[0] != '/') return bivy_cli_usage_error(err, "exec", "--cwd: \"%s\" is not an absolute path", optarg);
        o.cwd = optarg;
        break;
      case 'u':
        if (parse_user(optarg, &o) < 0)
          return bivy_cli_usage_error(err, "exec", "--user: expected UID[:GID] (numbers), got \"%s\"", optarg);
        break;
      case 'C':
        if (push(&caps, &ncaps, optarg) < 0) return bivy_error(err, ENOMEM, "exec");
        break;
      case 'd': o.detach = true; break;
      case 'F': o.pid_file = optarg; break;
      case 'P':
        if (bivy_parse_i64(optarg, &n) < 0 || n < 0 || n > 65536)
          return bivy_cli_usage_error(err, "exec", "--preserve-fds: invalid count \"%s\"", optarg);
        o.preserve_fds = (int)n;
        break;
      default: return bivy_cli_usage_error(err, "exec", "unknown option");
    }
  }
  if (optind >= argc) return bivy_cli_usage_error(err, "exec", "expected a container ID");
  o.id = argv[optind++];
  if (optind < argc && strcmp(argv[optind], "--") == 0) optind++;
  if (o.process_file == NULL && optind >= argc)
    return bivy_cli_usage_error(err, "exec", "expected a command after the container ID (or --process FILE)");
  if (o.process_file && optind < argc)
    return bivy_cli_usage_error(err, "exec", "--process FILE and a command are mutually exclusive");
  o.args = argv + optind;
  o.env = env;
  o.caps = caps;
  pid_t pid;
  return bivy_container_exec(&o, &pid, err);
}

BIVY_VERB(verb_exec) = {
    .name = "exec",
    .summary = "run a process in a running container",
    .usage = "Usage: bivy exec [OPTIONS] ID [--] COMMAND [ARGS...]\n"
             "       bivy exec [OPTIONS] --process FILE ID\n"
             "\n"
             "Run COMMAND in running container ID: its namespaces, cgroup and root, with the\n"
             "container's process settings as defaults (env, capabilities, rlimits,\n"
             "noNewPrivileges, seccomp profile). In the foreground bivy waits, forwards\n"
             "SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2, and exits with the\n"
             "process's status (128+N when killed by signal N).\n"
             "\n"
             "Options:\n"
             "  -p, --process FILE        an OCI process JSON (instead of COMMAND and the options below)\n"
             "  -t, --tty                 allocate a pty (needs --console-socket)\n"
             "      --console-socket SOCK send the pty master to the unix socket SOCK\n"
             "  -e, --env KEY=VALUE       set an environment variable (repeatable)\n"
             "      --cwd DIR             working directory inside the container (absolute)\n"
             "  -u, --user UID[:GID]      numeric user (and group) to run as\n"
             "      --cap CAP             add a capability, e.g. CAP_NET_ADMIN (repeatable)\n"
             "  -d, --detach              do not wait for the process\n"
             "      --pid-file FILE       write the process's pid to FILE\n"
             "      --preserve-fds N      pass fds 3..3+N-1 to the process\n"
             "  -h, --help                this help\n",
    .run = run_exec,
};
