/* sigign SIG... -- CMD ARGS...: run CMD with the given signals ignored (raw rt_sigaction, so
 * glibc's reserved real-time signals 32 and 33 can be ignored too) and all signals blocked
 * when -b is given first. For tests that check a container does not inherit them. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
  int i = 1;
  if (i < argc && strcmp(argv[i], "-b") == 0) {
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    i++;
  }
  struct {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    uint64_t mask;
  } ign = {.handler = SIG_IGN};
  for (; i < argc && strcmp(argv[i], "--") != 0; i++)
    if (syscall(SYS_rt_sigaction, atoi(argv[i]), &ign, NULL, sizeof(uint64_t)) < 0) {
      perror(argv[i]);
      return 125;
    }
  if (i + 1 >= argc) {
    fprintf(stderr, "usage: sigign [-b] SIG... -- CMD [ARG...]\n");
    return 125;
  }
  execvp(argv[i + 1], argv + i + 1);
  perror(argv[i + 1]);
  return 127;
}
