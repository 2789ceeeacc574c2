/* bivyd layer 1 (loop): one epoll loop, its fd watches, timers and end-of-iteration hooks.
 * Nothing here knows what an instance is: higher layers register a callback with each
 * watch and timer (the sd-event source idea), and the loop calls it when it fires.
 *   watches  fd + epoll events -> fn(watch, events)
 *   timers   CLOCK_MONOTONIC deadline (ns) -> fn(timer, now); one timerfd, a min-heap
 *   idle     fn() after every iteration (reaping what callbacks marked removed, ...)
 * SIGTERM and SIGINT end the loop; SIGHUP is ignored. */
#ifndef BIVYD_LOOP_H
#define BIVYD_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/error.h"

struct loop_watch;
typedef void (*loop_watch_fn)(struct loop_watch *w, uint32_t events);
struct loop_watch {
  loop_watch_fn fn;
  void *data;
};

struct loop_timer;
typedef void (*loop_timer_fn)(struct loop_timer *t, uint64_t now_ns);
struct loop_timer {
  loop_timer_fn fn;
  void *data;
  uint64_t due;  /* monotonic ns; 0 = not armed */
  size_t slot;   /* position in the heap (loop.c) */
};

int loop_init(bivy_error_t *err);
/* run until loop_quit() or a terminating signal */
void loop_run(void);
void loop_quit(void);

int loop_watch_add(int fd, uint32_t events, struct loop_watch *w);
int loop_watch_mod(int fd, uint32_t events, struct loop_watch *w);
void loop_watch_del(int fd);
/* close an fd that is watched (or -1) and set it to -1 */
void loop_watch_close(int *fd);

/* (re)arm at due_ns (monotonic); 0 disarms */
void loop_timer_set(struct loop_timer *t, uint64_t due_ns);
void loop_timer_stop(struct loop_timer *t);
static inline bool loop_timer_armed(const struct loop_timer *t) { return t->due != 0; }

/* called after every iteration, in the order added */
int loop_idle_add(void (*fn)(void));

#endif
