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
} verbs[] = {
    {"up", verb_up, cl_verb_up, false},
    {"down", verb_down, cl_verb_down, false},
    {"rm", verb_rm, cl_verb_rm, false},
    {"restart", verb_restart, cl_verb_elsewhere, true},
    {"ls", verb_ls, cl_verb_ls, false},
    {"inspect", verb_inspect, cl_verb_elsewhere, true},
    {"logs", verb_logs, cl_verb_elsewhere, true},
    {"resize", verb_resize, cl_verb_resize, false},
    {"autoscale", verb_autoscale, NULL, false},
    {"metrics", verb_metrics, NULL, false},
    {"events", verb_events, NULL, false},
    {"ping", verb_ping, NULL, false},
    {"migrate", NULL, cl_verb_migrate, false},
    {"drain", NULL, cl_verb_drain, false},
    {"undrain", NULL, cl_verb_undrain, false},
};

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
      if (cl_view_load(&view, &err) < 0) {
        bivyd_client_send_error(c, "%s: %s", name, err->msg);
        return;
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
