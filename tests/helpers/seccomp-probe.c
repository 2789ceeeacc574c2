/* Test helper: make one system call by name and print its outcome, to observe a seccomp
 * filter from the inside (keyctl, personality with a given argument, ...).
 *
 *   seccomp-probe NAME|#NR [ARG...]  ARG: a number (decimal, 0x hex, negative) or str:TEXT
 *
 * Prints "NAME ret=R errno=E" (E = 0 on success) and exits 0; 2 on bad usage. */
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Runs under filters that refuse ptrace: LeakSanitizer (ASan builds) cannot work there. */
const char *__lsan_default_options(void);
const char *__lsan_default_options(void) { return "detect_leaks=0"; }

int main(int argc, char **argv) {
  if (argc < 2 || argc > 8) {
    fprintf(stderr, "usage: seccomp-probe NAME [ARG...] (at most 6 args)\n");
    return 2;
  }
  /* "#N": a raw syscall number (e.g. one newer than this libseccomp) */
  int nr = argv[1][0] == '#' ? atoi(argv[1] + 1) : seccomp_syscall_resolve_name(argv[1]);
  if (nr < 0) {
    fprintf(stderr, "seccomp-probe: unknown syscall %s\n", argv[1]);
    return 2;
  }
  long a[6] = {0};
  for (int i = 2; i < argc; i++) {
    if (strncmp(argv[i], "str:", 4) == 0) {
      a[i - 2] = (long)(argv[i] + 4);
      continue;
    }
    char *end;
    errno = 0;
    a[i - 2] = argv[i][0] == '-' ? strtol(argv[i], &end, 0) : (long)strtoul(argv[i], &end, 0);
    if (errno || *end) {
      fprintf(stderr, "seccomp-probe: bad argument %s\n", argv[i]);
      return 2;
    }
  }
  errno = 0;
  long r = syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  int e = r < 0 ? errno : 0;
  printf("%s ret=%ld errno=%d\n", argv[1], r, e);
  fflush(stdout);
  return 0;
}
