/* Helpers shared by the cgroup verbs (see cgroup-common.h). */
#include "tools/bivy/cgroup-common.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/state.h"

int cgv_open(struct bivy_global *g, const char *verb, const char *id, bool lock, struct cgv *c, bivy_error_t *err) {
  memset(c, 0, sizeof *c);
  c->lock = -1;
  if (lock) {
    c->lock = bivy_state_lock(g->root, id, err);
    if (c->lock < 0) {
      c->lock = -1;
      return bivy_error_wrap(err, "%s", verb);
    }
  }
  int r = bivy_state_load(g->root, id, &c->state, err);
  if (r < 0) {
    if (r == -ENOENT) return bivy_error(err, 0, "%s: container %s does not exist", verb, id);
    return bivy_error_wrap(err, "%s", verb);
  }
  c->status = bivy_state_refresh(g->root, id, c->state);
  json_t *cj = json_object_get(c->state, "cgroup");
  if (cj == NULL) return bivy_error(err, 0, "%s: container %s has no cgroup recorded", verb, id);
  if ((r = bivy_cgroup_from_json(cj, &c->cg, err)) < 0) return bivy_error_wrap(err, "%s: container %s", verb, id);
  return 0;
}

void cgv_close(struct cgv *c) {
  if (c->cg) bivy_cgroup_free(c->cg);
  if (c->state) json_decref(c->state);
  if (c->lock >= 0) close(c->lock);
  c->cg = NULL;
  c->state = NULL;
  c->lock = -1;
}

int cgv_parse_duration(const char *s, unsigned *ms) {
  if (s == NULL || *s == '\0') return -EINVAL;
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || v < 0 || !isfinite(v) || *s == '-' || *s == '+') return -EINVAL;
  double mult;
  if (strcmp(end, "") == 0 || strcmp(end, "s") == 0) mult = 1000;
  else if (strcmp(end, "ms") == 0) mult = 1;
  else if (strcmp(end, "m") == 0) mult = 60000;
  else if (strcmp(end, "h") == 0) mult = 3600000;
  else return -EINVAL;
  double r = v * mult;
  if (r > 86400000.0 * 30) return -ERANGE;
  *ms = (unsigned)(r + 0.5);
  return 0;
}
