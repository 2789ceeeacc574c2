/* bivyd layer 3 (supervision): a limits update of an instance: checked as a whole (spec,
 * autoscale bounds, host budget), applied live through the runtime's all-or-nothing update
 * with its safe memory shrink when running, and kept as the desired limits. */
#ifndef BIVYD_LIVE_RESIZE_H
#define BIVYD_LIVE_RESIZE_H

#include <jansson.h>
#include <stdbool.h>

#include "runtime/error.h"

struct bivyd_inst;

/* upd: {"memory": BYTES, "cpus": N, ...}. *live tells whether a cgroup was changed. */
int inst_resize(struct bivyd_inst *in, json_t *upd, bool *live, bivy_error_t *err);

#endif
