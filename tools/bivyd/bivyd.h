/* bivyd internals: one single-threaded epoll loop supervising every instance.
 *   main.c       options, start-up (lock, adoption), the loop, timers, signals
 *   server.c     the control socket: clients, line-delimited JSON framing, output buffers
 *   verbs.c      request handlers (up, down, restart, ls, inspect, logs, resize, metrics, events)
 *   instance.c   the instance table, durable state (STATE/instances/NAME.json), events
 *   supervise.c  start / stop / exit detection / restart policy / re-adoption
 *   health.c     health probes (exec, tcp, http) and OOM watching
 *   logs.c       log files: capture, size-capped rotation, tail, follow
 *   autoscale.c  automatic vertical scaling: pressure signals, grow/shrink, host budget */
#ifndef BIVYD_H
#define BIVYD_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "runtime/error.h"
#include "cgroups/cgroups.h"
#include "runtime/autoscale.h"
#include "runtime/supervise.h"

struct bivyd_inst;
struct bivyd_client;

/* what an epoll event points at */
enum watch_kind { W_LISTEN, W_CLIENT, W_SIGNAL, W_TIMER, W_PIDFD, W_OOM, W_PROBE, W_AS_MEM, W_AS_PSI_MEM, W_AS_PSI_CPU };
struct watch {
  enum watch_kind kind;
  void *ptr;
};

enum inst_state {
  S_STARTING,
  S_RUNNING,
  S_BACKOFF,  /* waiting to restart (shown as crash-loop after BIVY_SV_CRASH_LOOP quick failures) */
  S_STOPPING, /* down: SIGTERM sent, SIGKILL at the deadline */
  S_STOPPED,  /* down by the user: no restarts */
  S_EXITED,   /* exited and the policy says no (more) restarts */
};

enum probe_kind { P_NONE, P_EXEC, P_TCP, P_HTTP };

struct bivyd_inst {
  char *name;
  char cid[160];            /* runtime container ID in use: NAME, or NAME.w (warm instances alternate) */
  bool warm;                /* keep a created spare container to restart in ~1 ms */
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
  struct watch w_pid;
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

  /* timers (monotonic ns, 0 = none) */
  uint64_t due_restart, due_kill, due_health, due_probe_timeout;

  /* OOM */
  int oom_fd;
  struct watch w_oom;
  uint64_t oom_base, oom_last, oom_kills;
  bool kill_unhealthy;      /* we killed it for failing its health check */

  /* health */
  char health[16];          /* "", "starting", "healthy", "unhealthy" */
  unsigned health_streak;   /* consecutive failures */
  bool health_passed_once;
  enum probe_kind probe;
  int probe_fd;             /* pidfd (exec) or socket (tcp/http) */
  pid_t probe_pid;
  struct watch w_probe;
  bool probe_sent;          /* http: request written */
  char probe_buf[32];
  size_t probe_len;
  char *probe_output;       /* last failure reason */
  char ip[64];              /* address from the runtime state (bridge) */

  /* autoscale (autoscale.c); armed while running with spec.autoscale */
  bool as_on;
  struct bivy_as_policy as;
  struct bivy_cgroup *as_cg; /* open while armed */
  int as_mem_fd, as_psi_mem_fd, as_psi_cpu_fd; /* -1 = none */
  struct watch w_as_mem, w_as_psi_mem, w_as_psi_cpu;
  uint64_t due_autoscale;   /* next evaluation (shrink window, fallbacks) */
  uint64_t as_calm_since_ns;  /* last grow, shrink or pressure signal */
  uint64_t as_win_ns, as_win_cpu_usec; /* start of the CPU averaging window */
  uint64_t as_periods, as_throttled;   /* last cpu.stat sample (no-PSI fallback) */
  uint64_t as_refused_mem;  /* last refused memory target (one event per target) */
  double as_refused_cpu;

  int log_fd;               /* O_APPEND log file, open only while starting the init */
  uint64_t waiters[8];      /* clients waiting for down/restart to finish */
  int n_waiters;

  struct bivyd_inst *next;
};

struct bivyd {
  const char *root, *state_dir, *socket_path, *cgroup_parent;
  uint64_t max_backoff_ms;
  uint64_t log_max;         /* bytes per log file before rotation */
  bool debug;
  int epfd, listen_fd, sig_fd, timer_fd, lock_fd, devnull, self_pidns;
  struct watch w_listen, w_sig, w_timer;
  struct bivyd_inst *insts;
  size_t n_insts;
  struct bivyd_client *clients;
  uint64_t next_client_id;
  bool quit;
  /* event ring for `bivy monitor` */
  json_t *events;           /* array, at most EVENTS_KEEP */
  uint64_t event_seq;
  uint64_t restarts_total, oom_total, health_fail_total, starts_total;
  uint64_t last_restart_latency_ns;
  uint64_t budget_mem;      /* --budget-memory bytes, 0 = none */
  double budget_cpus;       /* --budget-cpus, 0 = none */
  uint64_t autoscale_total, autoscale_refused_total;
};

#define EVENTS_KEEP 512
#define MAX_LINE (1024 * 1024)
#define MAX_OUTBUF (16 * 1024 * 1024)

extern struct bivyd D;

/* main.c */
void bivyd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void bivyd_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int bivyd_watch_add(int fd, uint32_t events, struct watch *w);
void bivyd_watch_del(int fd);
uint64_t bivyd_now_ms(void);
void bivyd_rfc3339(char *buf, size_t len);

/* server.c */
struct bivyd_client {
  uint64_t id;
  int fd;
  struct watch w;
  char *in;
  size_t in_len, in_cap;
  bool discarding;          /* skipping the rest of an over-long line */
  char *out;
  size_t out_len, out_cap, out_off;
  bool closing;             /* close once out is flushed */
  bool dead;
  bool denied;              /* not root: gets an error, nothing else */
  bool follow_events;
  char *follow_logs;        /* instance name for logs -f */
  off_t log_off;
  uint64_t log_ino;
  struct bivyd_client *next;
};
int bivyd_server_open(bivy_error_t *err);
void bivyd_server_accept(void);
void bivyd_client_event(struct bivyd_client *c, uint32_t events);
void bivyd_client_send(struct bivyd_client *c, json_t *msg); /* steals msg */
void bivyd_client_send_error(struct bivyd_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
struct bivyd_client *bivyd_client_find(uint64_t id);
void bivyd_clients_reap(void);

/* verbs.c */
void bivyd_handle(struct bivyd_client *c, json_t *req);

/* instance.c */
struct bivyd_inst *inst_find(const char *name);
struct bivyd_inst *inst_new(const char *name, json_t *spec); /* adds to the table */
void inst_free(struct bivyd_inst *in);
void insts_reap(void);
int inst_save(struct bivyd_inst *in);
int insts_load(bivy_error_t *err);
void inst_remove_files(struct bivyd_inst *in);
const char *inst_state_name(const struct bivyd_inst *in);
json_t *inst_summary(struct bivyd_inst *in);
void bivyd_event(struct bivyd_inst *in, const char *type, json_t *extra); /* steals extra */
char *inst_path(const char *dir, const char *name, const char *suffix);

/* supervise.c */
int sv_start(struct bivyd_inst *in, bivy_error_t *err);
void sv_start_or_backoff(struct bivyd_inst *in);
void sv_exited(struct bivyd_inst *in);
void sv_stop(struct bivyd_inst *in, uint64_t timeout_ms);
void sv_kill(struct bivyd_inst *in, int sig);
void sv_adopt(struct bivyd_inst *in, pid_t pid, unsigned long long start);
void sv_timers(uint64_t now_ns);
uint64_t sv_next_due(void);
void sv_cleanup_container(struct bivyd_inst *in);
void sv_detach(struct bivyd_inst *in);
void sv_drop_spare(struct bivyd_inst *in);
void sv_prepare_spare(struct bivyd_inst *in);
void sv_delete_cid(const char *cid);

/* health.c */
void health_arm(struct bivyd_inst *in, bool first);
void health_start_probe(struct bivyd_inst *in);
void health_probe_event(struct bivyd_inst *in, uint32_t events);
void health_probe_timeout(struct bivyd_inst *in);
void health_stop(struct bivyd_inst *in);
void oom_watch(struct bivyd_inst *in);
void oom_event(struct bivyd_inst *in);
void oom_unwatch(struct bivyd_inst *in);
uint64_t oom_count(struct bivyd_inst *in);
struct bivy_cgroup *inst_cgroup(struct bivyd_inst *in);

/* autoscale.c */
void as_arm(struct bivyd_inst *in);
void as_disarm(struct bivyd_inst *in);
/* Policy removed from a running instance: as_disarm, and lift v2's memory.high line. */
void as_off(struct bivyd_inst *in);
void as_event(struct bivyd_inst *in, enum watch_kind kind);
void as_tick(struct bivyd_inst *in, uint64_t now_ns);
/* Whether limits (a spec's "limits") fit the host budget next to every other instance:
 * 0, or -ENOSPC with a message naming the budget. */
int as_budget_check(struct bivyd_inst *self, json_t *limits, bivy_error_t *err);
/* Apply a limits update (the `resize` path: all-or-nothing, safe shrink) live when running,
 * and keep it as the desired limits. *live tells whether a cgroup was changed. */
int inst_resize(struct bivyd_inst *in, json_t *upd, bool *live, bivy_error_t *err);

/* logs.c */
int logs_open(struct bivyd_inst *in, bivy_error_t *err);
void logs_rotate_all(void);
int logs_tail(const char *name, long lines, char **out, size_t *len, bivy_error_t *err);
void logs_follow_tick(void);
json_t *json_text(const char *buf, size_t len); /* a JSON string of bytes (invalid UTF-8 -> '?') */

#endif
