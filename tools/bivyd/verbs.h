/* bivyd layer 5 (control API): the local verbs, each answering one request. */
#ifndef BIVYD_VERBS_H
#define BIVYD_VERBS_H

#include <jansson.h>

struct bivyd_client;

void verb_up(struct bivyd_client *c, json_t *req);
void verb_down(struct bivyd_client *c, json_t *req);
void verb_rm(struct bivyd_client *c, json_t *req);
void verb_restart(struct bivyd_client *c, json_t *req);
void verb_ls(struct bivyd_client *c, json_t *req);
void verb_inspect(struct bivyd_client *c, json_t *req);
void verb_logs(struct bivyd_client *c, json_t *req);
void verb_resize(struct bivyd_client *c, json_t *req);
void verb_autoscale(struct bivyd_client *c, json_t *req);
void verb_metrics(struct bivyd_client *c, json_t *req);
void verb_events(struct bivyd_client *c, json_t *req);
void verb_ping(struct bivyd_client *c, json_t *req);
/* answers for down/restart that finish later */
void verbs_init(void);

#endif
