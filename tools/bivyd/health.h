/* bivyd layer 3 (supervision): health probes of running instances (exec inside, TCP
 * connect, HTTP GET), each an fd and two timers in the loop. A failing instance whose
 * restart policy allows it is SIGKILLed with in->kill_unhealthy set; supervision sees the
 * exit like any other. */
#ifndef BIVYD_HEALTH_H
#define BIVYD_HEALTH_H

#include <jansson.h>
#include <stdbool.h>

struct bivyd_inst;

/* schedule the next probe (first: the instance just started: status "starting") */
void health_arm(struct bivyd_inst *in, bool first);
void health_stop(struct bivyd_inst *in);
/* {"status", "failing_streak", "last_error"} for inspect */
json_t *health_detail(struct bivyd_inst *in);
void health_init(void);

#endif
