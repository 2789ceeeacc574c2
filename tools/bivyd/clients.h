/* bivyd layer 5 (control API): client connections of the control socket and their answers. */
#ifndef BIVYD_CLIENTS_H
#define BIVYD_CLIENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tools/bivyd/loop.h"

struct bivyd_client {
  uint64_t id;
  int fd;
  struct loop_watch w;
  char *in;
  size_t in_len, in_cap;
  bool discarding;          /* skipping the rest of an over-long line */
  char *out;
  size_t out_len, out_cap, out_off;
  bool closing;             /* close once out is flushed */
  bool dead;
  bool denied;              /* not root: gets an error, nothing else */
  bool follow_events;
  char *follow_logs;        /* instance name for logs -f */
  off_t log_off;
  uint64_t log_ino;
  struct bivyd_client *next;
};
extern struct bivyd_client *clients;

/* a connection watched with on_ready (server.c reads it) */
struct bivyd_client *bivyd_client_new(int fd, loop_watch_fn on_ready);
void bivyd_client_close(struct bivyd_client *c);
void bivyd_client_flush(struct bivyd_client *c);
void bivyd_client_send(struct bivyd_client *c, json_t *msg); /* steals msg */
void bivyd_client_send_error(struct bivyd_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* {"ok": true} + extra (stolen) */
void bivyd_client_ok(struct bivyd_client *c, json_t *extra);
struct bivyd_client *bivyd_client_find(uint64_t id);
/* free the closed connections (a loop idle hook) */
void bivyd_clients_reap(void);

#endif
