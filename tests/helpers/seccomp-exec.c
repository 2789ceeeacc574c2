/* Test helper: run a command under an OCI seccomp profile through the runtime's own code
 * path (bivy_seccomp_prepare in this process, then bivy_seccomp_install, then exec), as the
 * container process does. Used by tests/integration/50-seccomp.sh on the host.
 *
 *   seccomp-exec [--cache DIR] [--no-nnp] [--info FILE] PROFILE -- CMD [ARG...]
 *
 * PROFILE: a JSON file with a linux.seccomp object (or a whole config.json: its
 * .linux.seccomp is used), or builtin:NAME. --info FILE: write {"fromCache":B,"insns":N,
 * "notify":B} before exec. With SCMP_ACT_NOTIFY the listener fd and a state are sent to
 * listenerPath as the runtime would. Exit 125 when the set-up fails. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/seccomp.h"

static int die(const char *what, bivy_error_t err) {
  fprintf(stderr, "seccomp-exec: %s: %s\n", what, err && err->msg ? err->msg : "failed");
  return 125;
}

int main(int argc, char **argv) {
  const char *cache = NULL, *info = NULL;
  bool nnp = true;
  static const struct option opts[] = {{"cache", required_argument, NULL, 'c'},
                                       {"info", required_argument, NULL, 'i'},
                                       {"no-nnp", no_argument, NULL, 'n'},
                                       {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
    switch (c) {
      case 'c': cache = optarg; break;
      case 'i': info = optarg; break;
      case 'n': nnp = false; break;
      default: return 2;
    }
  }
  if (optind + 2 > argc || strcmp(argv[optind + 1], "--") != 0 || optind + 2 >= argc) {
    fprintf(stderr, "usage: seccomp-exec [--cache DIR] [--no-nnp] [--info FILE] PROFILE -- CMD [ARG...]\n");
    return 2;
  }
  const char *profile = argv[optind];
  char **cmd = argv + optind + 2;
  _cleanup_error_ bivy_error_t err = NULL;
  _cleanup_json_ json_t *root = NULL;
  json_error_t jerr;
  if (strncmp(profile, "builtin:", 8) == 0) {
    const char *text = bivy_seccomp_builtin(profile + 8);
    if (text == NULL) {
      fprintf(stderr, "seccomp-exec: no built-in profile %s\n", profile + 8);
      return 125;
    }
    root = json_loads(text, 0, &jerr);
  } else {
    root = json_load_file(profile, 0, &jerr);
  }
  if (root == NULL) {
    fprintf(stderr, "seccomp-exec: %s: %s\n", profile, jerr.text);
    return 125;
  }
  json_t *seccomp = root;
  json_t *linux_ = json_object_get(root, "linux");
  if (linux_) seccomp = json_object_get(linux_, "seccomp");

  struct bivy_seccomp *s = NULL;
  if (bivy_seccomp_prepare(seccomp, cache, &s, &err) < 0) return die("prepare", err);
  if (info) {
    FILE *f = fopen(info, "we");
    if (f == NULL) return 125;
    fprintf(f, "{\"fromCache\":%s,\"insns\":%zu,\"notify\":%s}\n", bivy_seccomp_from_cache(s) ? "true" : "false",
            bivy_seccomp_program_size(s), bivy_seccomp_has_notify(s) ? "true" : "false");
    fclose(f);
  }
  if (nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
    perror("seccomp-exec: no_new_privs");
    return 125;
  }
  int nfd = -1;
  if (bivy_seccomp_install(s, &nfd, &err) < 0) return die("install", err);
  if (nfd >= 0) {
    char state[256];
    snprintf(state, sizeof state,
             "{\"ociVersion\":\"1.2.0\",\"id\":\"seccomp-exec\",\"status\":\"creating\",\"pid\":%d,\"bundle\":\"/\"}",
             (int)getpid());
    if (bivy_seccomp_send_listener(s, nfd, state, getpid(), &err) < 0) return die("send listener", err);
    close(nfd);
  }
  bivy_seccomp_free(s);
  execvp(cmd[0], cmd);
  fprintf(stderr, "seccomp-exec: exec %s: %s\n", cmd[0], strerror(errno));
  return 127;
}
