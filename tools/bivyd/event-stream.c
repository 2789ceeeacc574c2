/* bivyd layer 2 (model): the event ring, its subscribers and the counters. */
#include "tools/bivyd/event-stream.h"

#include <errno.h>
#include <string.h>

#include "runtime/cleanup.h"
#include "runtime/util.h"
#include "tools/bivyd/conf.h"
#include "tools/bivyd/daemon-log.h"

struct bivyd_counters M;
static json_t *ring;
static uint64_t seq;
static void (*subs[4])(json_t *ev);
static size_t n_subs;

json_t *events_recent(void) {
  if (ring == NULL) ring = json_array();
  return ring;
}

int events_subscribe(void (*fn)(json_t *ev)) {
  if (n_subs == sizeof subs / sizeof subs[0]) return -ENOSPC;
  subs[n_subs++] = fn;
  return 0;
}

void bivyd_event(const char *name, const char *type, json_t *extra) {
  char ts[40];
  bivyd_rfc3339(ts, sizeof ts);
  json_t *ev = json_pack("{s:I, s:s, s:I, s:s, s:s}", "seq", (json_int_t)++seq, "time", ts, "mono_ns",
                         (json_int_t)bivy_now_ns(), "name", name ? name : "", "type", type);
  if (ev == NULL) {
    json_decref(extra);
    return;
  }
  if (extra) json_object_update(ev, extra);
  json_decref(extra);
  _cleanup_free_ char *txt = json_dumps(ev, JSON_COMPACT);
  if (txt && (D.debug || strcmp(type, "health") != 0)) bivyd_log("event %s", txt);
  json_t *r = events_recent();
  json_array_append(r, ev);
  if (json_array_size(r) > EVENTS_KEEP) json_array_remove(r, 0);
  for (size_t i = 0; i < n_subs; i++) subs[i](ev);
  json_decref(ev);
}
