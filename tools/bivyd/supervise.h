/* bivyd layer 3 (supervision): an instance's lifecycle: start (warm or cold), exit
 * detection through its pidfd, the restart policy with back-off, stop with a deadline,
 * re-adoption of a running init, detaching at shutdown. Reports through events; the layer
 * above learns that a down/restart finished through the sv_on_settled callback. */
#ifndef BIVYD_SUPERVISE_H
#define BIVYD_SUPERVISE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "runtime/error.h"

struct bivyd_inst;

/* start now: running (pidfd watched, probes armed) or an error, nothing left behind */
int sv_start(struct bivyd_inst *in, bivy_error_t *err);
/* start; on failure the restart policy decides (back-off or give up) */
void sv_start_or_backoff(struct bivyd_inst *in);
/* clear the back-off history, then sv_start_or_backoff (a fresh `up`) */
void sv_start_fresh(struct bivyd_inst *in);
/* SIGTERM (SIGKILL for 0), SIGKILL at the deadline; no more restarts */
void sv_stop(struct bivyd_inst *in, uint64_t timeout_ms);
/* watch an init that is not our child (bivyd restarted): pid + start time checked; false
 * (nothing changed) when that process is gone */
bool sv_adopt(struct bivyd_inst *in, pid_t pid, unsigned long long start);
/* stop watching (the instance keeps running) */
void sv_detach(struct bivyd_inst *in);
/* fn(in, NULL) when a stop or restart that clients wait for finished, fn(in, why) if the
 * restart failed; in->waiters lists them */
void sv_on_settled(void (*fn)(struct bivyd_inst *in, const char *error));
/* a gate asked before every start: NULL lets it start, else the reason it may not start now
 * (it is asked again every BIVY_SV_HOLD_RETRY_MS; the cluster layer's claim deadline) */
#define BIVY_SV_HOLD_RETRY_MS 250
void sv_set_start_gate(const char *(*gate)(struct bivyd_inst *in));

#endif
