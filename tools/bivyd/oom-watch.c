/* bivyd layer 3 (supervision): OOM watching of instances (see oom-watch.h). */
#include "tools/bivyd/oom-watch.h"

#include <sys/epoll.h>

#include "runtime/cleanup.h"
#include "tools/bivyd/conf.h"
#include "tools/bivyd/daemon-log.h"
#include "tools/bivyd/event-stream.h"
#include "tools/bivyd/instance.h"
#include "tools/bivyd/loop.h"

static uint64_t oom_count(struct bivyd_inst *in) {
  _cleanup_cgroup_ struct bivy_cgroup *cg = inst_memory_cgroup(in, NULL);
  if (cg == NULL) return in->oom_last;
  _cleanup_error_ bivy_error_t err = NULL;
  uint64_t n = 0;
  if (bivy_cgroup_oom_count(cg, &n, &err) < 0) return in->oom_last;
  return n;
}

static void oom_ready(struct loop_watch *w, uint32_t events) {
  (void)events;
  struct bivyd_inst *in = w->data;
  if (in->removed || in->oom_fd < 0) return;
  bivy_cgroup_oom_drain(in->oom_fd);
  uint64_t n = oom_count(in);
  if (n > in->oom_last) {
    bivyd_event(in->name, "oom", json_pack("{s:I}", "oom_kills", (json_int_t)(n - in->oom_base)));
    in->oom_last = n;
  }
}

void oom_watch(struct bivyd_inst *in, json_t *st) {
  oom_unwatch(in);
  _cleanup_error_ bivy_error_t err = NULL;
  _cleanup_cgroup_ struct bivy_cgroup *cg = inst_memory_cgroup(in, st);
  if (cg == NULL) return;
  bivy_cgroup_oom_count(cg, &in->oom_base, &err);
  in->oom_last = in->oom_base;
  /* the eventfd / inotify registration outlives the cgroup directory fds */
  int fd = bivy_cgroup_oom_fd(cg, &err);
  if (fd < 0) {
    if (D.debug) bivyd_log("%s: no OOM notification: %s", in->name, err->msg);
    return;
  }
  in->oom_fd = fd;
  in->w_oom = (struct loop_watch){oom_ready, in};
  loop_watch_add(fd, EPOLLIN, &in->w_oom);
}

void oom_unwatch(struct bivyd_inst *in) { loop_watch_close(&in->oom_fd); }

bool oom_on_exit(struct bivyd_inst *in) {
  uint64_t oc = oom_count(in);
  bool oom = oc > in->oom_base;
  if (oom) {
    in->oom_kills += oc - in->oom_base;
    M.oom_total += oc - in->oom_base;
  }
  oom_unwatch(in);
  return oom;
}
