/* recvtty: the receiving end of --console-socket, for tests.
 *
 *   recvtty [--input TEXT] SOCKET
 *
 * Listens on the unix socket SOCKET (created; removed on exit), accepts one connection,
 * receives the pty master fd (SCM_RIGHTS), writes TEXT (if given) to it, then copies
 * everything the container prints to stdout until the pty is closed on the container side.
 * Prints "recvtty: got fd, payload <name>" on stderr when the fd arrives. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv) {
  static const struct option opts[] = {{"input", required_argument, NULL, 'i'}, {0, 0, 0, 0}};
  const char *input = NULL;
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (o == 'i') input = optarg;
    else return 2;
  }
  if (optind + 1 != argc) {
    fprintf(stderr, "usage: recvtty [--input TEXT] SOCKET\n");
    return 2;
  }
  const char *path = argv[optind];
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof(addr.sun_path)) {
    fprintf(stderr, "recvtty: %s: path too long\n", path);
    return 1;
  }
  strcpy(addr.sun_path, path);
  int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (ls < 0 || bind(ls, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(ls, 1) < 0) {
    fprintf(stderr, "recvtty: listen %s: %s\n", path, strerror(errno));
    return 1;
  }
  int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
  unlink(path);
  if (c < 0) {
    perror("recvtty: accept");
    return 1;
  }
  char payload[256] = {0};
  struct iovec iov = {.iov_base = payload, .iov_len = sizeof(payload) - 1};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
  if (recvmsg(c, &msg, MSG_CMSG_CLOEXEC) < 0) {
    perror("recvtty: recvmsg");
    return 1;
  }
  struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
  if (cm == NULL || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
    fprintf(stderr, "recvtty: no fd received\n");
    return 1;
  }
  int fd;
  memcpy(&fd, CMSG_DATA(cm), sizeof(int));
  fprintf(stderr, "recvtty: got fd, payload %s\n", payload);
  close(c);
  close(ls);
  if (input && write(fd, input, strlen(input)) < 0) perror("recvtty: write input");
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break; /* EIO: the last slave fd in the container was closed */
    if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n) break;
    fflush(stdout);
  }
  return 0;
}
