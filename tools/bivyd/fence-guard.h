/* bivyd layer 4 (cluster): the fence guard, a child that SIGKILLs this node's instances at
 * the fencing deadline if bivyd dies or hangs (see fence-guard.c). */
#ifndef BIVYD_FENCE_GUARD_H
#define BIVYD_FENCE_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "runtime/error.h"

struct fence_target {
  pid_t pid;
  unsigned long long start; /* process start time: a reused pid is not killed */
  uint64_t deadline;        /* CLOCK_MONOTONIC ms at which it is killed */
};

int fence_guard_start(bivy_error_t *err);
/* the inits to kill, each at its deadline (armed false or n 0: disarm) */
void fence_guard_update(bool armed, const struct fence_target *t, size_t n);
/* SIGKILL the guards that earlier bivyds of this state dir left (once joined: their
 * instances are re-adopted under ours or removed) */
void fence_guard_retire_old(void);

#endif
