/* process.terminal: a pty pair created inside the container, and the console socket
 * protocol (runc's --console-socket: the master fd is sent with SCM_RIGHTS). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/linux.h"

int bivy_terminal_setup(const struct bivy_process *p, int *master_fd, bivy_error_t *err) {
  /* after pivot_root /dev/ptmx -> pts/ptmx: the container's own devpts instance, so the
   * container sees only its own ptys */
  _cleanup_close_ int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) return bivy_error_errno(err, "process.terminal: open /dev/ptmx");
  if (unlockpt(master) < 0) return bivy_error_errno(err, "process.terminal: unlockpt");
  char name[128];
  if (ptsname_r(master, name, sizeof(name)) != 0) return bivy_error_errno(err, "process.terminal: ptsname");
  _cleanup_close_ int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) return bivy_error_errno(err, "process.terminal: open %s", name);
  /* /dev/console is the container's terminal (getty, init systems write to it): bind the
   * slave over it rather than letting it be the host's console */
  _cleanup_close_ int tree = open_tree(AT_FDCWD, name, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree < 0) return bivy_error_errno(err, "process.terminal: bind %s", name);
  _cleanup_close_ int console = open("/dev/console", O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (console < 0 && errno == ENOENT) {
    int t = open("/dev/console", O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (t >= 0) close(t);
    console = open("/dev/console", O_PATH | O_NOFOLLOW | O_CLOEXEC);
  }
  if (console < 0) return bivy_error_errno(err, "process.terminal: create /dev/console");
  if (move_mount(tree, "", console, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    return bivy_error_errno(err, "process.terminal: bind %s to /dev/console", name);
  /* the process user owns its terminal (best effort: the id may be unmapped in a user ns) */
  (void)!fchown(slave, p->user.uid, (gid_t)-1);
  if (p->console_height || p->console_width) {
    struct winsize ws = {.ws_row = (unsigned short)p->console_height, .ws_col = (unsigned short)p->console_width};
    if (ioctl(slave, TIOCSWINSZ, &ws) < 0) return bivy_error_errno(err, "process.consoleSize");
  }
  /* a new session so the slave can become our controlling terminal (EPERM: already leader) */
  if (setsid() < 0 && errno != EPERM) return bivy_error_errno(err, "process.terminal: setsid");
  if (ioctl(slave, TIOCSCTTY, 0) < 0) return bivy_error_errno(err, "process.terminal: TIOCSCTTY %s", name);
  for (int fd = 0; fd <= 2; fd++)
    if (dup2(slave, fd) < 0) return bivy_error_errno(err, "process.terminal: dup2 %s to %d", name, fd);
  *master_fd = steal_fd(&master);
  return 0;
}

int bivy_send_fd(const char *socket_path, int fd, bivy_error_t *err) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (socket_path == NULL || strlen(socket_path) >= sizeof(addr.sun_path))
    return bivy_error(err, EINVAL, "--console-socket: path too long or empty");
  strcpy(addr.sun_path, socket_path);
  _cleanup_close_ int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return bivy_error_errno(err, "--console-socket: socket");
  if (connect(s, (struct sockaddr *)&addr, sizeof(addr)) < 0)
    return bivy_error_errno(err, "--console-socket %s: connect", socket_path);
  /* payload: the terminal's name, as runc sends it; the fd rides in SCM_RIGHTS */
  char payload[] = "/dev/ptmx";
  struct iovec iov = {.iov_base = payload, .iov_len = sizeof(payload) - 1};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  memset(&u, 0, sizeof(u));
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
  struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &fd, sizeof(int));
  ssize_t r;
  do r = sendmsg(s, &msg, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  if (r < 0) return bivy_error_errno(err, "--console-socket %s: send terminal", socket_path);
  return 0;
}
