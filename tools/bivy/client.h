/* bivyd client: the control socket protocol (line-delimited JSON) for the verbs that talk
 * to the supervisor (up, down, restart, ls, inspect, logs, resize, metrics, monitor). */
#ifndef BIVY_CLI_CLIENT_H
#define BIVY_CLI_CLIENT_H

#include <jansson.h>
#include <stdio.h>

#include "runtime/error.h"
#include "tools/bivy/cli.h"

struct bivy_client {
  int fd;
  FILE *in; /* buffered reader over fd */
};

/* Connect to g->socket, send req (one line) and read the first answer into *resp. An
 * {"ok":false} answer becomes an error "VERB: <message>". With keep (streaming verbs)
 * the connection stays open in *c for bivy_client_next; else it is closed. */
int bivy_client_call(struct bivy_global *g, const char *verb, json_t *req, json_t **resp, struct bivy_client *c,
                     bivy_error_t *err);
/* Next line of a stream: 1 with *msg, 0 at EOF, <0 on error. */
int bivy_client_next(struct bivy_client *c, json_t **msg, bivy_error_t *err);
void bivy_client_close(struct bivy_client *c);

/* Print a JSON value (compact) and a newline to stdout. */
void bivy_client_print_json(json_t *j);

/* Limit flags shared by `up` and `resize`: "memory" (SIZE, -1/max = unlimited), "cpus"
 * (decimal), "pids-limit" (N, -1 = unlimited), "cpuset-cpus" (LIST): set key in limits. */
int bivy_client_limit(const char *verb, const char *flag, const char *arg, json_t *limits, bivy_error_t *err);
/* The status line printed for an instance summary: "NAME: STATE (pid N)". */
void bivy_client_print_summary(json_t *inst);

#endif
