/* bivyd layer 3 (supervision): live limit updates of instances (see live-resize.h). */
#include "tools/bivyd/live-resize.h"

#include "runtime/cleanup.h"
#include "runtime/state.h"
#include "tools/bivyd/budget.h"
#include "tools/bivyd/conf.h"
#include "tools/bivyd/instance.h"
#include "tools/bivyd/launch.h"

int inst_resize(struct bivyd_inst *in, json_t *upd, bool *live, bivy_error_t *err) {
  *live = false;
  /* the new desired spec, checked as a whole (autoscale bounds, host budget) */
  _cleanup_json_ json_t *spec = json_deep_copy(in->spec);
  json_t *limits = json_object_get(spec, "limits");
  if (!json_is_object(limits)) {
    limits = json_object();
    json_object_set_new(spec, "limits", limits);
  }
  bivy_sv_limits_merge(limits, upd);
  _cleanup_json_ json_t *res = NULL;
  int r;
  if ((r = bivy_sv_spec_check(spec, err)) < 0 || (r = bivy_sv_limits_to_resources(upd, &res, err)) < 0) return r;
  if (in->state != S_STOPPED && in->state != S_EXITED && (r = budget_check(in, limits, err)) < 0) return r;
  _cleanup_cgroup_ struct bivy_cgroup *cg = in->state == S_RUNNING ? inst_cgroup(in) : NULL;
  if (cg) {
    /* the same all-or-nothing path as `bivy update` */
    _cleanup_error_ bivy_error_t e2 = NULL;
    _cleanup_close_ int lock = bivy_state_lock(D.root, in->cid, &e2);
    _cleanup_json_ json_t *st = NULL;
    if (lock < 0 || bivy_state_load(D.root, in->cid, &st, &e2) < 0) st = NULL;
    bool joined = false;
    /* joining a cgroup needs the state to record it */
    struct bivy_cgroup_update_opts o = {.reclaim_timeout_ms = 2000, .joined = st ? &joined : NULL};
    r = bivy_cgroup_update(cg, res, &o, err);
    if (joined) json_object_set_new(st, "cgroup", bivy_cgroup_to_json(cg)); /* so delete removes it */
    if (r >= 0 && st) bivy_cgroup_record_resources(st, res);
    if (st && (joined || r >= 0)) bivy_state_save(D.root, in->cid, st, &e2);
    if (r < 0) return r;
    *live = true;
  }
  json_decref(in->spec);
  in->spec = json_incref(spec);
  inst_save(in);
  if (in->spare_pidfd >= 0) { /* the spare was made with the old limits */
    launch_drop_spare(in);
    launch_prepare_spare(in);
  }
  return 0;
}
