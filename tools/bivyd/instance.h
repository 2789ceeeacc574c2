/* bivyd layer 2 (model): the instance table, each instance's durable record
 * (STATE/instances/NAME.json) and what `ls` shows of it. No decisions here: supervision
 * (layer 3) starts, stops and restarts; modules keep their own per-instance state behind
 * the opaque pointers below and free it from an inst_on_free hook. */
#ifndef BIVYD_INSTANCE_H
#define BIVYD_INSTANCE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroups/cgroups.h"
#include "runtime/error.h"
#include "tools/bivyd/loop.h"
#include "tools/bivyd/policy/instance-policy.h"

enum inst_state {
  S_STARTING,
  S_RUNNING,
  S_BACKOFF,  /* waiting to restart (shown as crash-loop after BIVY_SV_CRASH_LOOP quick failures) */
  S_STOPPING, /* down: SIGTERM sent, SIGKILL at the deadline */
  S_STOPPED,  /* down by the user: no restarts */
  S_EXITED,   /* exited and the policy says no (more) restarts */
};

struct health_state;  /* health.c */
struct scaling_state; /* autoscaler.c */

struct bivyd_inst {
  char *name;
  char cid[160];            /* runtime container ID in use: NAME, or NAME.w (warm instances alternate) */
  bool warm;                /* keep a created spare container to restart in ~1 ms (launch.c) */
  pid_t spare_pid;
  int spare_pidfd;          /* the spare's init (created, not started), -1 = none */
  json_t *spec;             /* desired spec (limits updated by resize) */
  struct bivy_sv_restart rp;
  enum inst_state state;
  bool removed;             /* freed at the end of the loop iteration */
  bool restart_requested;   /* `restart`: start again once stopped */
  bool user_stopped;        /* persisted: down was asked (unless-stopped stays down) */

  pid_t pid;
  unsigned long long pid_start;
  int pidfd;
  bool adopted;             /* not our child: exit status unknown */
  struct loop_watch w_pid;
  uint64_t started_ns;      /* monotonic */
  char started_at[40];      /* RFC 3339 */

  unsigned restarts;        /* total restarts */
  unsigned failure_restarts;
  unsigned quick_failures;  /* back-to-back runs shorter than the back-off reset */
  uint64_t backoff_next_ms;
  uint64_t last_delay_ms;
  uint64_t exit_seen_ns;    /* when the last exit was seen (for the restart latency) */
  char last_exit[64];       /* "exited(1)", "killed(KILL)", "oom-killed", "unhealthy", ... */
  int last_code;            /* exit code, 128+N for signals, -1 unknown */
  char *last_error;         /* last start failure */
  struct loop_timer t_restart, t_kill; /* supervise.c: back-off, stop deadline */

  /* OOM (oom-watch.c) */
  int oom_fd;
  struct loop_watch w_oom;
  uint64_t oom_base, oom_last, oom_kills;
  bool kill_unhealthy;      /* killed for failing its health check */

  char health[16];          /* "", "starting", "healthy", "unhealthy" (health.c) */
  struct health_state *hs;
  struct scaling_state *as;
  char ip[64];              /* address from the runtime state (bridge) */

  uint64_t saved_sum;       /* FNV-1a of the record as last written or read: unchanged, not rewritten */
  int log_fd;               /* O_APPEND log file, open only while starting the init */
  uint64_t waiters[8];      /* clients waiting for down/restart to finish (their ids) */
  int n_waiters;

  struct bivyd_inst *next;
};

struct inst_table {
  struct bivyd_inst *insts;
  size_t n_insts;
};
extern struct inst_table T;

/* STATE/DIR/NAME[SUFFIX]; caller frees */
char *inst_path(const char *dir, const char *name, const char *suffix);
struct bivyd_inst *inst_find(const char *name);
struct bivyd_inst *inst_new(const char *name, json_t *spec); /* adds to the table */
/* a module's per-instance clean-up, run when an instance is freed */
int inst_on_free_add(void (*fn)(struct bivyd_inst *in));
/* free the instances marked removed (a loop idle hook) */
void insts_reap(void);
int inst_save(struct bivyd_inst *in);
void inst_remove_files(struct bivyd_inst *in);
const char *inst_state_name(const struct bivyd_inst *in);
bool inst_running_like(const struct bivyd_inst *in); /* starting, running, backoff or stopping */
json_t *inst_summary(struct bivyd_inst *in);
/* The instance's cgroup, reopened from the runtime state (kept open it would cost a
 * directory fd per controller per instance). NULL if none. Caller frees. */
struct bivy_cgroup *inst_cgroup(struct bivyd_inst *in);
/* The runtime state (state.json) of the instance's container, NULL if none; caller frees.
 * Read it once and hand it to the functions below when several need it. */
json_t *inst_runtime_state(struct bivyd_inst *in);
/* Its cgroup with only the memory controller's directory open (OOM counting and
 * notification), from st, or from the runtime state when st is NULL. Caller frees. */
struct bivy_cgroup *inst_memory_cgroup(struct bivyd_inst *in, json_t *st);
/* signal the init; SIGKILL goes to everything in the cgroup (daemonised children too) */
void inst_signal(struct bivyd_inst *in, int sig);

/* What a record says beyond the instance itself: how it was left. */
struct inst_record {
  char state[16];           /* "running", "stopping", "stopped", "exited" */
  pid_t pid;
  unsigned long long pid_start;
};
/* Read STATE/instances/FILE into a new instance of the table (*in = NULL when one of that
 * name exists already). */
int inst_load(const char *file, struct bivyd_inst **in, struct inst_record *rec, bivy_error_t *err);

#endif
