/* bivyd layer 3 (supervision): OOM kills of an instance's cgroup, as an fd in the loop
 * (memory.events on v2, the memory.oom_control eventfd on v1) reported as "oom" events. */
#ifndef BIVYD_OOM_WATCH_H
#define BIVYD_OOM_WATCH_H

#include <stdbool.h>
#include <jansson.h>

struct bivyd_inst;

/* st: the runtime state (inst_runtime_state), or NULL to read it here */
void oom_watch(struct bivyd_inst *in, json_t *st);
void oom_unwatch(struct bivyd_inst *in);
/* at exit: were there OOM kills since the watch began? (counts them, unwatches) */
bool oom_on_exit(struct bivyd_inst *in);

#endif
