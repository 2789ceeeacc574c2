/* bivyd layer 5 (control API): the control socket: a SOCK_STREAM unix socket speaking line-delimited JSON. Each request
 * is one line (a JSON object with "verb"); each answer one line ({"ok":true,...} or
 * {"ok":false,"error":"..."}); streaming verbs (logs -f, monitor --follow) keep sending
 * lines. Over-long lines, bad JSON and unknown verbs get an error answer; a client that
 * does not read its answers is dropped once MAX_OUTBUF is queued. */
#include "tools/bivyd/server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/util.h"
#include "tools/bivyd/clients.h"
#include "tools/bivyd/conf.h"
#include "tools/bivyd/loop.h"
#include "tools/bivyd/verb-table.h"

static int listen_fd = -1;
static struct loop_watch w_listen;
static void accept_all(struct loop_watch *w, uint32_t events);

int bivyd_server_open(bivy_error_t *err) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(D.socket_path) >= sizeof sa.sun_path) return bivy_error(err, ENAMETOOLONG, "--socket %s", D.socket_path);
  strcpy(sa.sun_path, D.socket_path);
  _cleanup_free_ char *dir = strdup(D.socket_path);
  if (dir == NULL) return bivy_error(err, ENOMEM, "--socket");
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) {
    *slash = '\0';
    int r = bivy_mkdir_p(dir, 0700, err);
    if (r < 0) return bivy_error_wrap(err, "--socket");
  }
  _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return bivy_error_errno(err, "socket");
  /* a live daemon on that path keeps it; a stale socket file is replaced */
  _cleanup_close_ int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0)
    return bivy_error(err, EADDRINUSE, "--socket %s: another bivyd is listening there", D.socket_path);
  unlink(D.socket_path);
  /* created 0600 from the start (umask), not chmod'ed afterwards: no window where others connect */
  mode_t old = umask(0177);
  int r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
  umask(old);
  if (r < 0) return bivy_error_errno(err, "--socket %s: bind", D.socket_path);
  if (listen(fd, 128) < 0) return bivy_error_errno(err, "listen");
  listen_fd = steal_fd(&fd);
  w_listen = (struct loop_watch){accept_all, NULL};
  return loop_watch_add(listen_fd, EPOLLIN, &w_listen);
}

static void client_ready(struct loop_watch *w, uint32_t events);

static void accept_all(struct loop_watch *w, uint32_t events) {
  (void)w, (void)events;
  for (;;) {
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    /* only root (or bivyd's own user) may drive the supervisor: it starts containers */
    struct ucred cr;
    socklen_t len = sizeof cr;
    bool denied = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 || (cr.uid != 0 && cr.uid != geteuid());
    struct bivyd_client *c = bivyd_client_new(fd, client_ready);
    if (c == NULL) {
      close(fd);
      continue;
    }
    if (denied) {
      /* answered; what it sends is read and dropped until it hangs up (closing with
       * unread input would reset the connection before it reads why) */
      c->denied = true;
      bivyd_client_send_error(c, "permission denied: bivyd serves root only");
    }
  }
}

static void handle_line(struct bivyd_client *c, const char *line, size_t len) {
  if (len == 0) return;
  json_error_t je;
  _cleanup_json_ json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
  if (req == NULL) {
    bivyd_client_send_error(c, "request: invalid JSON at column %d: %s", je.column, je.text);
    return;
  }
  if (!json_is_object(req)) {
    bivyd_client_send_error(c, "request: must be a JSON object with a \"verb\"");
    return;
  }
  verb_dispatch(c, req);
}

static void read_in(struct bivyd_client *c) {
  char buf[65536];
  for (;;) {
    ssize_t n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) bivyd_client_close(c);
      return;
    }
    if (n == 0) { /* EOF: answers still queued are flushed, then the connection closes */
      c->closing = true;
      if (c->out_len == 0 || c->follow_events || c->follow_logs) bivyd_client_close(c);
      return;
    }
    if (c->denied) continue;
    for (ssize_t i = 0; i < n && !c->dead; i++) {
      char ch = buf[i];
      if (ch == '\n') {
        if (c->discarding) {
          c->discarding = false;
          bivyd_client_send_error(c, "request: line longer than %d bytes", MAX_LINE);
        } else {
          handle_line(c, c->in, c->in_len);
        }
        c->in_len = 0;
        continue;
      }
      if (c->discarding) continue;
      if (c->in_len + 1 >= MAX_LINE) { /* over-long line: drop it up to its end */
        c->discarding = true;
        c->in_len = 0;
        continue;
      }
      if (c->in_len + 1 >= c->in_cap) {
        size_t cap = c->in_cap ? c->in_cap * 2 : 1024;
        char *p = realloc(c->in, cap);
        if (p == NULL) {
          bivyd_client_close(c);
          return;
        }
        c->in = p;
        c->in_cap = cap;
      }
      c->in[c->in_len++] = ch;
    }
    if (c->dead) return;
  }
}

static void client_ready(struct loop_watch *w, uint32_t events) {
  struct bivyd_client *c = w->data;
  if (c->dead) return;
  if (events & (EPOLLERR | EPOLLHUP)) {
    bivyd_client_close(c);
    return;
  }
  if (events & EPOLLOUT) bivyd_client_flush(c);
  if (!c->dead && (events & (EPOLLIN | EPOLLRDHUP))) read_in(c);
}

