/* bivyd layer 5 (control API): every verb in one table: its local handler and, in cluster
 * mode, the one that goes through etcd first. */
#include "tools/bivyd/verb-table.h"

#include <stdbool.h>
#include <string.h>

#include "runtime/cleanup.h"
#include "tools/bivyd/clients.h"
#include "tools/bivyd/cluster-verbs.h"
#include "tools/bivyd/cluster-view.h"
#include "tools/bivyd/cluster.h"
#include "tools/bivyd/conf.h"
#include "tools/bivyd/daemon-log.h"
#include "tools/bivyd/instance.h"
#include "tools/bivyd/verbs.h"

static const struct verb {
  const char *name;
  void (*local)(struct bivyd_client *c, json_t *req);
  /* cluster mode; NULL = local only */
  bool (*cluster)(struct bivyd_client *c, json_t *req, struct cl_view *v);
  /* cluster mode: the local handler when the instance is on this node */
  bool here_first;
  /* cluster mode: changes the cluster's records, so needs etcd now (reads answer from the
   * last view while etcd is unreachable) */
  bool writes;
} verbs[] = {
    {"up", verb_up, cl_verb_up, false, true},
    {"down", verb_down, cl_verb_down, false, true},
    {"rm", verb_rm, cl_verb_rm, false, true},
    {"restart", verb_restart, cl_verb_elsewhere, true, false},
    {"ls", verb_ls, cl_verb_ls, false, false},
    {"inspect", verb_inspect, cl_verb_elsewhere, true, false},
    {"logs", verb_logs, cl_verb_elsewhere, true, false},
    {"resize", verb_resize, cl_verb_resize, false, true},
    {"autoscale", verb_autoscale, NULL, false, false},
    {"metrics", verb_metrics, NULL, false, false},
    {"events", verb_events, NULL, false, false},
    {"ping", verb_ping, NULL, false, false},
    {"migrate", NULL, cl_verb_migrate, false, true},
    {"drain", NULL, cl_verb_drain, false, true},
    {"undrain", NULL, cl_verb_undrain, false, true},
};

/* a change refused at once, naming the cluster's state, when etcd is known not to answer */
static bool refuse_write(struct bivyd_client *c, const char *verb) {
  const char *st = cluster_state();
  if (strcmp(st, "joined") == 0) return false;
  bivyd_client_send_error(c, "%s: cluster %s (%s): changes need etcd; reads answer from the last view", verb, st,
                          C.last_error ? C.last_error : "lease not confirmed");
  return true;
}

void verb_dispatch(struct bivyd_client *c, json_t *req) {
  const char *name = json_string_value(json_object_get(req, "verb"));
  if (name == NULL) {
    bivyd_client_send_error(c, "request: \"verb\" is required (a string)");
    return;
  }
  if (D.debug) bivyd_log("request from client %llu: %s", (unsigned long long)c->id, name);
  const struct verb *v = NULL;
  for (size_t i = 0; i < sizeof verbs / sizeof verbs[0] && v == NULL; i++)
    if (strcmp(verbs[i].name, name) == 0) v = &verbs[i];
  if (v && v->cluster && cluster_on()) {
    const char *inst = json_string_value(json_object_get(req, "name"));
    if (!v->here_first || (inst && !inst_find(inst))) {
      struct cl_view view;
      _cleanup_error_ bivy_error_t err = NULL;
      if (v->writes && refuse_write(c, name)) return;
      if (cl_view_load(&view, &err) < 0) {
        if (v->writes) {
          bivyd_client_send_error(c, "%s: %s", name, err->msg);
          return;
        }
        cl_view_last(&view); /* stale (or empty before the first read): marked as such */
      }
      bool handled = v->cluster(c, req, &view);
      cl_view_free(&view);
      if (handled) return;
    }
  }
  if (v && v->local) v->local(c, req);
  else if (v) bivyd_client_send_error(c, "%s: needs cluster mode (bivyd --cluster)", name);
  else bivyd_client_send_error(c, "request: unknown verb \"%.64s\"", name);
}
