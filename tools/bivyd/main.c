/* bivyd: the bivy supervisor (restart policies, health checks, OOM awareness). Being built
 * in the "bivyd" issue; for now it only answers --help and --version. */
#include <stdio.h>
#include <string.h>

#ifndef BIVY_VERSION
#define BIVY_VERSION "0.1.0"
#endif

static const char usage[] =
    "Usage: bivyd [--root DIR] [--state-dir DIR] [--socket PATH]\n"
    "\n"
    "Supervise bivy instances: restart on exit, OOM kill or failed health check.\n"
    "(not implemented yet: see the README's roadmap)\n";

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(usage, stdout);
      return 0;
    }
    if (strcmp(argv[i], "--version") == 0) {
      printf("bivyd version %s\n", BIVY_VERSION);
      return 0;
    }
  }
  fputs("bivyd: not implemented yet\n", stderr);
  return 1;
}
