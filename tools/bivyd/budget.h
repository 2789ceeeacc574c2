/* bivyd layer 3 (supervision): the host budget (--budget-memory, --budget-cpus): the limits
 * of all instances that hold resources stay within it. */
#ifndef BIVYD_BUDGET_H
#define BIVYD_BUDGET_H

#include <jansson.h>

#include "runtime/error.h"

struct bivyd_inst;

/* Sum of one limit ("memory", "cpus") over every other instance that holds resources (not
 * stopped or exited). */
double budget_others_sum(struct bivyd_inst *self, const char *key);
/* Whether limits (a spec's "limits") fit the budget next to every other instance: 0, or
 * -ENOSPC with a message naming the budget. */
int budget_check(struct bivyd_inst *self, json_t *limits, bivy_error_t *err);

#endif
