/* bivyd layer 3 (supervision): automatic vertical scaling of running instances within
 * spec.autoscale and the host budget; every action is an "autoscale" event. */
#ifndef BIVYD_AUTOSCALER_H
#define BIVYD_AUTOSCALER_H

struct bivyd_inst;

/* arm the signals of a running instance with spec.autoscale (no-op without one) */
void as_arm(struct bivyd_inst *in);
void as_disarm(struct bivyd_inst *in);
/* policy removed from a running instance: as_disarm, and lift v2's memory.high line */
void as_off(struct bivyd_inst *in);
void as_init(void);

#endif
