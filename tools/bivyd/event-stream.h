/* bivyd layer 2 (model): the event stream (what `bivy monitor` shows) and the daemon-wide
 * counters (what `bivy metrics` shows). Producers call bivyd_event(); consumers above
 * (streaming clients) subscribe with a callback. */
#ifndef BIVYD_EVENT_STREAM_H
#define BIVYD_EVENT_STREAM_H

#include <jansson.h>
#include <stdint.h>

struct bivyd_counters {
  uint64_t restarts_total, oom_total, health_fail_total, starts_total;
  uint64_t last_restart_latency_ns;
  uint64_t autoscale_total, autoscale_refused_total;
};
extern struct bivyd_counters M;

/* one event {"seq","time","mono_ns","name","type", ...extra}; name "" = the daemon's own;
 * steals extra */
void bivyd_event(const char *name, const char *type, json_t *extra);
/* the last EVENTS_KEEP events, oldest first (borrowed) */
json_t *events_recent(void);
/* fn gets every new event (borrowed) */
int events_subscribe(void (*fn)(json_t *ev));

#endif
