/* bivyd layer 5 (control API): the verbs in cluster mode, through etcd. Each returns true when
 * it answered; false hands the request to the local verb (the instance is on this node). */
#ifndef BIVYD_CLUSTER_VERBS_H
#define BIVYD_CLUSTER_VERBS_H

#include <jansson.h>
#include <stdbool.h>

struct bivyd_client;
struct cl_view;

bool cl_verb_up(struct bivyd_client *c, json_t *req, struct cl_view *v);
bool cl_verb_down(struct bivyd_client *c, json_t *req, struct cl_view *v);
bool cl_verb_rm(struct bivyd_client *c, json_t *req, struct cl_view *v);
bool cl_verb_resize(struct bivyd_client *c, json_t *req, struct cl_view *v);
bool cl_verb_ls(struct bivyd_client *c, json_t *req, struct cl_view *v);
bool cl_verb_migrate(struct bivyd_client *c, json_t *req, struct cl_view *v);
bool cl_verb_drain(struct bivyd_client *c, json_t *req, struct cl_view *v);
bool cl_verb_undrain(struct bivyd_client *c, json_t *req, struct cl_view *v);
/* inspect, logs, restart of an instance owned by another node */
bool cl_verb_elsewhere(struct bivyd_client *c, json_t *req, struct cl_view *v);

#endif
