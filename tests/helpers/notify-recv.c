/* notify-recv SOCKET COUNT TIMEOUT_S: play the service manager's end of sd_notify: bind a
 * unix datagram socket at SOCKET, print each message received (newlines as ';', one message
 * per line, flushed) until COUNT messages or TIMEOUT_S seconds; exit 0 on COUNT, 1 on time-out. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: notify-recv SOCKET COUNT TIMEOUT_S\n");
    return 2;
  }
  int want = atoi(argv[2]), timeout_ms = atoi(argv[3]) * 1000;
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", argv[1]);
  unlink(argv[1]);
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    perror(argv[1]);
    return 2;
  }
  for (int got = 0; got < want;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) <= 0) return 1;
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    if (n < 0) continue;
    buf[n] = '\0';
    for (char *c = buf; *c; c++)
      if (*c == '\n') *c = ';';
    printf("%s\n", buf);
    fflush(stdout);
    got++;
  }
  return 0;
}
