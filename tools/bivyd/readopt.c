/* bivyd layer 3 (supervision): loading instance records at start-up and re-adopting
 * (see readopt.h). */
#include "tools/bivyd/readopt.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cleanup.h"
#include "runtime/state.h"
#include "runtime/util.h"
#include "tools/bivyd/conf.h"
#include "tools/bivyd/daemon-log.h"
#include "tools/bivyd/event-stream.h"
#include "tools/bivyd/instance.h"
#include "tools/bivyd/launch.h"
#include "tools/bivyd/supervise.h"

static int load_one(const char *file, bivy_error_t *err) {
  struct bivyd_inst *in;
  struct inst_record rec;
  int r = inst_load(file, &in, &rec, err);
  if (r < 0 || in == NULL) return r;
  /* a warm instance's spare (created, never started) from the previous bivyd goes */
  if (in->warm) {
    char other[sizeof in->cid];
    launch_delete_cid(launch_other_cid(in->name, in->cid, other, sizeof other));
  }
  const char *st = rec.state;
  if (strcmp(st, "exited") == 0) {
    in->state = S_EXITED;
    return 0;
  }
  if (strcmp(st, "stopped") == 0) {
    /* Docker: "always" comes back when the daemon starts even after a manual stop;
     * "unless-stopped" (and the others) stay down */
    if (in->rp.policy == BIVY_SV_ALWAYS) {
      in->user_stopped = false;
      bivyd_event(in->name, "daemon-start", json_pack("{s:s}", "action", "start (always)"));
      sv_start_or_backoff(in);
    } else {
      in->state = S_STOPPED;
    }
    return 0;
  }
  if (rec.pid > 0 && sv_adopt(in, rec.pid, rec.pid_start)) {
    if (strcmp(st, "stopping") == 0) sv_stop(in, 10000);
    else launch_prepare_spare(in);
    return 0;
  }
  /* it died while nobody watched (bivyd down, or a reboot): the policy decides, with the
   * exit status unknown (counted as a failure) */
  launch_cleanup(in);
  if (strcmp(st, "stopping") == 0) {
    in->state = S_STOPPED;
    inst_save(in);
    return 0;
  }
  snprintf(in->last_exit, sizeof in->last_exit, "died-unsupervised");
  in->last_code = -1;
  if (bivy_sv_should_restart(&in->rp, true, in->failure_restarts)) {
    in->restarts++;
    in->failure_restarts++;
    bivyd_event(in->name, "daemon-start", json_pack("{s:s}", "action", "restart (died while unsupervised)"));
    sv_start_or_backoff(in);
  } else {
    in->state = S_EXITED;
    bivyd_event(in->name, "daemon-start", json_pack("{s:s}", "action", "none (died while unsupervised)"));
    inst_save(in);
  }
  return 0;
}

int insts_load(bivy_error_t *err) {
  _cleanup_free_ char *dir = NULL;
  if (asprintf(&dir, "%s/instances", D.state_dir) < 0) return bivy_error(err, ENOMEM, "load");
  _cleanup_closedir_ DIR *d = opendir(dir);
  if (d == NULL) return errno == ENOENT ? 0 : bivy_error_errno(err, "open %s", dir);
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0) continue;
    _cleanup_error_ bivy_error_t e2 = NULL;
    if (load_one(e->d_name, &e2) < 0) bivyd_log("skipping %s: %s", e->d_name, e2->msg);
  }
  return 0;
}
