/* bivyd layer 1 (loop): the daemon's settings (from its options) and the process-wide fds
 * every layer may use. Filled by bivyd.c before anything else runs; read-only after. */
#ifndef BIVYD_CONF_H
#define BIVYD_CONF_H

#include <stdbool.h>
#include <stdint.h>

struct bivyd_conf {
  const char *root, *state_dir, *socket_path, *cgroup_parent;
  uint64_t max_backoff_ms;
  uint64_t log_max;    /* bytes per log file before rotation */
  bool debug;
  uint64_t budget_mem; /* --budget-memory bytes, 0 = none */
  double budget_cpus;  /* --budget-cpus, 0 = none */
  int devnull;         /* /dev/null, for the stdio of instances and probes */
  int self_pidns;      /* our own pid namespace, to come back to after a probe's exec */
};

extern struct bivyd_conf D;

#define EVENTS_KEEP 512
#define MAX_LINE (1024 * 1024)
#define MAX_OUTBUF (16 * 1024 * 1024)

#endif
