/* bivyd layer 5 (control API): the one table of verbs, local and cluster, and dispatch. */
#ifndef BIVYD_VERB_TABLE_H
#define BIVYD_VERB_TABLE_H

#include <jansson.h>

struct bivyd_client;

/* answer one request {"verb": ...} */
void verb_dispatch(struct bivyd_client *c, json_t *req);

#endif
