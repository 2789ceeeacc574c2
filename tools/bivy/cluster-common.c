/* Waiting for cluster moves: see cluster-common.h. Not a verb. */
#include "tools/bivy/cluster-common.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "runtime/cleanup.h"
#include "runtime/util.h"
#include "tools/bivy/client.h"

static bool done(json_t *arr, const char *name, const char *node) {
  size_t i;
  json_t *in;
  json_array_foreach(arr, i, in) {
    const char *n = json_string_value(json_object_get(in, "name")) ?: "";
    const char *nd = json_string_value(json_object_get(in, "node")) ?: "";
    const char *st = json_string_value(json_object_get(in, "state")) ?: "";
    if (name && strcmp(n, name) == 0) return strcmp(nd, node) == 0 && strcmp(st, "running") == 0;
    if (!name && strcmp(nd, node) == 0) return false;
  }
  return name == NULL;
}

int bivy_cl_wait(struct bivy_global *g, const char *verb, const char *name, const char *node, uint64_t timeout_ms,
                 bivy_error_t *err) {
  uint64_t end = bivy_now_ns() + timeout_ms * 1000000ull;
  for (;;) {
    _cleanup_json_ json_t *req = json_pack("{s:s}", "verb", "ls"), *resp = NULL;
    int r = bivy_client_call(g, verb, req, &resp, NULL, err);
    if (r < 0) return r;
    if (done(json_object_get(resp, "instances"), name, node)) return 0;
    if (bivy_now_ns() >= end) {
      if (name) return bivy_error_plain(err, ETIMEDOUT, "%s %s: not running on node %s yet (see bivy ls)", verb, name, node);
      return bivy_error_plain(err, ETIMEDOUT, "%s %s: instances still on the node (see bivy ls)", verb, node);
    }
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL);
  }
}
