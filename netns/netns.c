/* STUB until the netns issue lands: containers get only what config.json says. */
#include "netns/netns.h"

#include <errno.h>
#include <stddef.h>

#include "runtime/config.h"

int bivy_net_setup(const char *state_root, const char *id, const struct bivy_config *cfg, pid_t pid,
                   json_t **net_state, bivy_error_t *err) {
  (void)state_root, (void)id, (void)pid;
  *net_state = NULL;
  if (bivy_config_annotation(cfg, BIVY_NET_ANNOTATION) == NULL) return 0;
  return bivy_error(err, ENOSYS, "annotations.%s: networking not supported yet", BIVY_NET_ANNOTATION);
}
int bivy_net_teardown(const char *state_root, const char *id, json_t *net_state, bivy_error_t *err) {
  (void)state_root, (void)id, (void)net_state, (void)err;
  return 0;
}
