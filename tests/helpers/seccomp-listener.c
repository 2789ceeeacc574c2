/* Test helper: a seccomp notify listener as the OCI runtime spec describes (listenerPath).
 *
 *   seccomp-listener SOCKET STATE_OUT [--errno N] [--syscall NAME]...
 *
 * Listens on the unix socket SOCKET (created; removed at exit), accepts ONE connection from
 * the runtime, receives the notify fd (SCM_RIGHTS) and the containerProcessState JSON (written
 * to STATE_OUT), then answers every trapped call: those named by --syscall (default mkdir and
 * mkdirat) get -N (--errno N, default 0 = report success without doing anything), any other
 * continues in the kernel. One line per notification on stdout: "NAME -> errno N" or
 * "NAME -> continue". Exits 0 when every process using the filter is gone. SOCKET.ready is
 * created once the socket listens. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef SECCOMP_USER_NOTIF_FLAG_CONTINUE
#define SECCOMP_USER_NOTIF_FLAG_CONTINUE (1UL << 0)
#endif

static const char *sock_path;
static char ready_path[256];

static void cleanup(void) {
  if (sock_path) unlink(sock_path);
  if (ready_path[0]) unlink(ready_path);
}

static int fail(const char *what) {
  fprintf(stderr, "seccomp-listener: %s: %s\n", what, strerror(errno));
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: seccomp-listener SOCKET STATE_OUT [--errno N] [--syscall NAME]...\n");
    return 2;
  }
  sock_path = argv[1];
  const char *state_out = argv[2];
  int answer = 0;
  const char *names[16] = {0};
  int n_names = 0;
  for (int i = 3; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--errno") == 0) answer = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--syscall") == 0 && n_names < 15) names[n_names++] = argv[i + 1];
    else return 2;
  }
  if (n_names == 0) {
    names[n_names++] = "mkdir";
    names[n_names++] = "mkdirat";
  }
  setvbuf(stdout, NULL, _IOLBF, 0);

  int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (ls < 0) return fail("socket");
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock_path);
  unlink(sock_path);
  if (bind(ls, (struct sockaddr *)&addr, sizeof addr) < 0) return fail("bind");
  atexit(cleanup);
  if (listen(ls, 1) < 0) return fail("listen");
  snprintf(ready_path, sizeof ready_path, "%s.ready", sock_path);
  close(open(ready_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));

  int conn = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
  if (conn < 0) return fail("accept");
  static char buf[1 << 16];
  union {
    struct cmsghdr h;
    char b[CMSG_SPACE(sizeof(int) * 4)];
  } cm;
  struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf - 1};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b, .msg_controllen = sizeof cm.b};
  ssize_t n = recvmsg(conn, &mh, MSG_CMSG_CLOEXEC);
  if (n <= 0) return fail("recvmsg");
  buf[n] = '\0';
  int nfd = -1;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) memcpy(&nfd, CMSG_DATA(c), sizeof nfd);
  if (nfd < 0) {
    fprintf(stderr, "seccomp-listener: no fd received\n");
    return 1;
  }
  FILE *f = fopen(state_out, "we");
  if (f == NULL) return fail(state_out);
  fprintf(f, "%s\n", buf);
  fclose(f);
  close(conn);
  close(ls);

  struct seccomp_notif *req;
  struct seccomp_notif_resp *resp;
  if (seccomp_notify_alloc(&req, &resp) < 0) return fail("seccomp_notify_alloc");
  for (;;) {
    struct pollfd p = {.fd = nfd, .events = POLLIN};
    if (poll(&p, 1, -1) < 0) {
      if (errno == EINTR) continue;
      return fail("poll");
    }
    if (p.revents & (POLLHUP | POLLERR) && !(p.revents & POLLIN)) break; /* all users gone */
    int r = seccomp_notify_receive(nfd, req);
    if (r < 0) {
      if (r == -ENOENT || r == -EINTR) continue; /* the caller died or was interrupted */
      errno = -r;
      return fail("receive");
    }
    char *name = seccomp_syscall_resolve_num_arch(req->data.arch, req->data.nr);
    bool ours = false;
    for (int i = 0; i < n_names && name; i++) ours |= strcmp(names[i], name) == 0;
    memset(resp, 0, sizeof *resp);
    resp->id = req->id;
    if (ours) {
      resp->error = -answer;
      resp->val = 0;
      printf("%s -> errno %d\n", name, answer);
    } else {
      resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
      printf("%s -> continue\n", name ? name : "?");
    }
    free(name);
    r = seccomp_notify_respond(nfd, resp);
    if (r < 0 && r != -ENOENT) {
      errno = -r;
      return fail("respond");
    }
  }
  seccomp_notify_free(req, resp);
  return 0;
}
