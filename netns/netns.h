/* Networking for containers launched with bivy directly (OCI leaves it to the caller).
 * Mode comes from the annotation "org.bivy.net" (none | host | bridge[:NAME] |
 * container:ID | ns:PATH); a config whose linux.namespaces network entry has a path just
 * joins it and bivy does nothing else. */
#ifndef BIVY_NETNS_H
#define BIVY_NETNS_H

#include <jansson.h>
#include <sys/types.h>

#include "runtime/error.h"

#define BIVY_NET_ANNOTATION "org.bivy.net"
#define BIVY_PUBLISH_ANNOTATION "org.bivy.publish"

struct bivy_config;

/* Wire the network namespace of the (already created, not yet started) container process
 * `pid` according to the config's annotations. Returns a JSON object describing what was
 * set up (for the state file; NULL when nothing was done). On failure nothing is left. */
int bivy_net_setup(const char *state_root, const char *id, const struct bivy_config *cfg, pid_t pid,
                   json_t **net_state, bivy_error_t *err);

/* Undo bivy_net_setup from its state JSON (veth, nft rules, lease). Idempotent. */
int bivy_net_teardown(const char *state_root, const char *id, json_t *net_state, bivy_error_t *err);

#endif
