/* bivyd layer 4 (cluster): the fence guard, a child that SIGKILLs this node's instances at
 * the fencing deadline if bivyd dies or hangs (see fence-guard.c). */
#ifndef BIVYD_FENCE_GUARD_H
#define BIVYD_FENCE_GUARD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "runtime/error.h"

struct fence_target {
  pid_t pid;
  unsigned long long start; /* process start time: a reused pid is not killed */
};

int fence_guard_start(bivy_error_t *err);
/* the deadline (CLOCK_MONOTONIC ms; 0 = disarm) and the inits to kill then */
void fence_guard_update(uint64_t deadline_ms, const struct fence_target *t, size_t n);

#endif
