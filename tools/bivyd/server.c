/* The control socket: a SOCK_STREAM unix socket speaking line-delimited JSON. Each request
 * is one line (a JSON object with "verb"); each answer one line ({"ok":true,...} or
 * {"ok":false,"error":"..."}); streaming verbs (logs -f, monitor --follow) keep sending
 * lines. Over-long lines, bad JSON and unknown verbs get an error answer; a client that
 * does not read its answers is dropped once MAX_OUTBUF is queued. */
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
#include "tools/bivyd/bivyd.h"

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
  D.listen_fd = steal_fd(&fd);
  D.w_listen = (struct watch){W_LISTEN, NULL};
  return bivyd_watch_add(D.listen_fd, EPOLLIN, &D.w_listen);
}

static void client_close(struct bivyd_client *c) {
  if (c->dead) return;
  c->dead = true;
  bivyd_watch_del(c->fd);
  close(c->fd);
  c->fd = -1;
}

void bivyd_server_accept(void) {
  for (;;) {
    int fd = accept4(D.listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    /* only root (or bivyd's own user) may drive the supervisor: it starts containers */
    struct ucred cr;
    socklen_t len = sizeof cr;
    bool denied = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 || (cr.uid != 0 && cr.uid != geteuid());
    struct bivyd_client *c = calloc(1, sizeof *c);
    if (c == NULL) {
      close(fd);
      continue;
    }
    c->id = ++D.next_client_id;
    c->fd = fd;
    c->w = (struct watch){W_CLIENT, c};
    if (bivyd_watch_add(fd, EPOLLIN | EPOLLRDHUP, &c->w) < 0) {
      close(fd);
      free(c);
      continue;
    }
    c->next = D.clients;
    D.clients = c;
    if (denied) {
      /* answered; what it sends is read and dropped until it hangs up (closing with
       * unread input would reset the connection before it reads why) */
      c->denied = true;
      bivyd_client_send_error(c, "permission denied: bivyd serves root only");
    }
  }
}

static void flush_out(struct bivyd_client *c) {
  while (!c->dead && c->out_off < c->out_len) {
    ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      client_close(c);
      return;
    }
    c->out_off += (size_t)w;
  }
  if (c->dead) return;
  if (c->out_off == c->out_len) {
    c->out_off = c->out_len = 0;
    if (c->closing) {
      client_close(c);
      return;
    }
  }
  struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (c->out_len ? EPOLLOUT : 0), .data.ptr = &c->w};
  epoll_ctl(D.epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void queue(struct bivyd_client *c, const char *s, size_t n) {
  if (c->dead) return;
  if (c->out_len + n > MAX_OUTBUF) { /* a client that does not read is dropped */
    client_close(c);
    return;
  }
  if (c->out_len + n > c->out_cap) {
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap < c->out_len + n) cap *= 2;
    char *p = realloc(c->out, cap);
    if (p == NULL) {
      client_close(c);
      return;
    }
    c->out = p;
    c->out_cap = cap;
  }
  memcpy(c->out + c->out_len, s, n);
  c->out_len += n;
}

void bivyd_client_send(struct bivyd_client *c, json_t *msg) {
  if (msg == NULL) return;
  char *s = json_dumps(msg, JSON_COMPACT);
  json_decref(msg);
  if (s == NULL) return;
  queue(c, s, strlen(s));
  queue(c, "\n", 1);
  free(s);
  flush_out(c);
}

void bivyd_client_send_error(struct bivyd_client *c, const char *fmt, ...) {
  _cleanup_free_ char *msg = NULL;
  va_list ap;
  va_start(ap, fmt);
  int n = vasprintf(&msg, fmt, ap);
  va_end(ap);
  bivyd_client_send(c, json_pack("{s:b, s:s}", "ok", 0, "error", n >= 0 ? msg : "error"));
}

struct bivyd_client *bivyd_client_find(uint64_t id) {
  for (struct bivyd_client *c = D.clients; c; c = c->next)
    if (c->id == id && !c->dead) return c;
  return NULL;
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
  bivyd_handle(c, req);
}

static void read_in(struct bivyd_client *c) {
  char buf[65536];
  for (;;) {
    ssize_t n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) client_close(c);
      return;
    }
    if (n == 0) { /* EOF: answers still queued are flushed, then the connection closes */
      c->closing = true;
      if (c->out_len == 0 || c->follow_events || c->follow_logs) client_close(c);
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
          client_close(c);
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

void bivyd_client_event(struct bivyd_client *c, uint32_t events) {
  if (c->dead) return;
  if (events & (EPOLLERR | EPOLLHUP)) {
    client_close(c);
    return;
  }
  if (events & EPOLLOUT) flush_out(c);
  if (!c->dead && (events & (EPOLLIN | EPOLLRDHUP))) read_in(c);
}

void bivyd_clients_reap(void) {
  struct bivyd_client **pp = &D.clients;
  while (*pp) {
    struct bivyd_client *c = *pp;
    if (c->dead) {
      *pp = c->next;
      free(c->in);
      free(c->out);
      free(c->follow_logs);
      free(c);
    } else {
      pp = &c->next;
    }
  }
}
