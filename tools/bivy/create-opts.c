/* Options shared by `bivy create` and `bivy run`. */
#include "tools/bivy/create-opts.h"

#include <getopt.h>

#include "runtime/util.h"

int bivy_cli_parse_create(struct bivy_global *g, const char *verb, int argc, char **argv,
                          struct bivy_create_opts *o, bool *detach, bivy_error_t *err) {
  static const struct option opts[] = {{"bundle", required_argument, NULL, 'b'},
                                       {"detach", no_argument, NULL, 'd'},
                                       {"pid-file", required_argument, NULL, 'p'},
                                       {"console-socket", required_argument, NULL, 'c'},
                                       {"preserve-fds", required_argument, NULL, 'P'},
                                       {"no-pivot", no_argument, NULL, 'N'},
                                       {"no-new-keyring", no_argument, NULL, 'K'},
                                       {0, 0, 0, 0}};
  *o = (struct bivy_create_opts){.root = g->root, .debug = g->debug ? bivy_debug : NULL};
  int c;
  int64_t n;
  while ((c = getopt_long(argc, argv, detach ? "+b:d" : "+b:", opts, NULL)) != -1) {
    switch (c) {
      case 'b': o->bundle = optarg; break;
      case 'd':
        if (detach == NULL) return bivy_cli_usage_error(err, verb, "unknown option --detach");
        *detach = true;
        break;
      case 'p': o->pid_file = optarg; break;
      case 'c': o->console_socket = optarg; break;
      case 'P':
        if (bivy_parse_i64(optarg, &n) < 0 || n < 0 || n > 65536)
          return bivy_cli_usage_error(err, verb, "--preserve-fds: invalid count \"%s\"", optarg);
        o->preserve_fds = (int)n;
        break;
      case 'N': o->no_pivot = true; break;
      case 'K': o->no_new_keyring = true; break;
      default: return bivy_cli_usage_error(err, verb, "unknown option");
    }
  }
  if (optind != argc - 1) return bivy_cli_usage_error(err, verb, "expected exactly one container ID");
  o->id = argv[optind];
  return 0;
}
