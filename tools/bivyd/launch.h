/* bivyd layer 3 (supervision): containers of an instance through the runtime library: the
 * generated bundle, create/start/delete, and the warm spare (a created container kept ready
 * so that a restart is only `start`). Mechanism only: supervise.c decides when. */
#ifndef BIVYD_LAUNCH_H
#define BIVYD_LAUNCH_H

#include <stdbool.h>
#include <sys/types.h>
#include <jansson.h>

#include "runtime/error.h"

struct bivyd_inst;

/* Create (not start) container cid for the instance: its init is our child, blocked on
 * the exec fifo, its stdout/stderr the instance's log file. */
int launch_create(struct bivyd_inst *in, const char *cid, pid_t *pid, int *pidfd, bivy_error_t *err);
/* start a created container */
int launch_start(struct bivyd_inst *in, const char *cid, bivy_error_t *err);
/* delete a container by ID, killing what is left in it (missing is fine) */
void launch_delete_cid(const char *cid);
/* the instance's current container */
void launch_cleanup(struct bivyd_inst *in);
/* warm instances: make the spare now / kill and delete it / start it (in->cid becomes the
 * spare's ID; -ENOENT when there is none) */
void launch_prepare_spare(struct bivyd_inst *in);
void launch_drop_spare(struct bivyd_inst *in);
int launch_start_spare(struct bivyd_inst *in, pid_t *pid, int *pidfd);
/* the spare's ID of a warm instance named name whose container in use is cid */
const char *launch_other_cid(const char *name, const char *cid, char *buf, size_t len);
/* the address from the runtime state st (bridge mode; inst_runtime_state), for ls and
 * health probes */
void launch_read_ip(struct bivyd_inst *in, json_t *st);

#endif
