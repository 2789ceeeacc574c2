/* bivyd layer 5 (control API): client connections: their output buffers, answers and
 * errors, lookup by id (for answers that come later), and reaping closed ones. */
#include "tools/bivyd/clients.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "tools/bivyd/conf.h"
#include "tools/bivyd/loop.h"

struct bivyd_client *clients;
static uint64_t next_client_id;

struct bivyd_client *bivyd_client_new(int fd, loop_watch_fn on_ready) {
  struct bivyd_client *c = calloc(1, sizeof *c);
  if (c == NULL) return NULL;
  c->id = ++next_client_id;
  c->fd = fd;
  c->w = (struct loop_watch){on_ready, c};
  if (loop_watch_add(fd, EPOLLIN | EPOLLRDHUP, &c->w) < 0) {
    free(c);
    return NULL;
  }
  c->next = clients;
  clients = c;
  return c;
}

void bivyd_client_close(struct bivyd_client *c) {
  if (c->dead) return;
  c->dead = true;
  loop_watch_del(c->fd);
  close(c->fd);
  c->fd = -1;
}

void bivyd_client_flush(struct bivyd_client *c) {
  while (!c->dead && c->out_off < c->out_len) {
    ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      bivyd_client_close(c);
      return;
    }
    c->out_off += (size_t)w;
  }
  if (c->dead) return;
  if (c->out_off == c->out_len) {
    c->out_off = c->out_len = 0;
    if (c->closing) {
      bivyd_client_close(c);
      return;
    }
  }
  loop_watch_mod(c->fd, EPOLLIN | EPOLLRDHUP | (c->out_len ? EPOLLOUT : 0), &c->w);
}

static void queue(struct bivyd_client *c, const char *s, size_t n) {
  if (c->dead) return;
  if (c->out_len + n > MAX_OUTBUF) { /* a client that does not read is dropped */
    bivyd_client_close(c);
    return;
  }
  if (c->out_len + n > c->out_cap) {
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap < c->out_len + n) cap *= 2;
    char *p = realloc(c->out, cap);
    if (p == NULL) {
      bivyd_client_close(c);
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
  bivyd_client_flush(c);
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
  for (struct bivyd_client *c = clients; c; c = c->next)
    if (c->id == id && !c->dead) return c;
  return NULL;
}

void bivyd_clients_reap(void) {
  struct bivyd_client **pp = &clients;
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

void bivyd_client_ok(struct bivyd_client *c, json_t *extra) {
  json_t *m = json_pack("{s:b}", "ok", 1);
  if (extra) {
    json_object_update(m, extra);
    json_decref(extra);
  }
  bivyd_client_send(c, m);
}
