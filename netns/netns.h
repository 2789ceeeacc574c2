/* Networking for containers launched with bivy directly (OCI leaves it to the caller).
 * Mode comes from the annotation "org.bivy.net" (none | host | bridge[:NAME] |
 * container:ID | ns:PATH); a config whose linux.namespaces network entry has a path just
 * joins it and bivy does nothing else. */
#ifndef BIVY_NETNS_H
#define BIVY_NETNS_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "runtime/error.h"

#define BIVY_NET_ANNOTATION "org.bivy.net"
#define BIVY_PUBLISH_ANNOTATION "org.bivy.publish"
/* Subnet of a bridge network when bivy defines it (CIDR, e.g. 10.207.3.0/24). */
#define BIVY_SUBNET_ANNOTATION "org.bivy.subnet"

/* Files bivy_net_setup writes into ROOT/ID/ (bridge and none modes). The lifecycle code
 * bind-mounts them read-only over /etc/hosts and /etc/resolv.conf in the container when the
 * "net" state has "hosts" / "resolvConf" keys (their absolute paths). */
#define BIVY_NET_HOSTS_FILE "hosts"
#define BIVY_NET_RESOLV_FILE "resolv.conf"

struct bivy_config;

/* Before clone: the network namespace the container must JOIN for its org.bivy.net mode.
 * container:ID -> /proc/<ID's init pid>/ns/net (checked alive, against pid reuse);
 * ns:PATH -> PATH (checked to be a network namespace file). *path is NULL when the mode
 * needs no join (none, bridge: a new netns per config.json; host: none at all; no
 * annotation; or config.json already names a network namespace path). Also validates the
 * annotations early (mode, publish list, subnet) so a bad value fails before anything exists. */
int bivy_net_ns_path(const char *state_root, const struct bivy_config *cfg, char **path, bivy_error_t *err);

/* Which files bivy_net_setup will write into ROOT/ID for the container's /etc: hosts (modes
 * none and bridge) and resolv.conf (bridge). The lifecycle code binds them read-only over
 * /etc/hosts and /etc/resolv.conf (the plan is built before the files exist). */
int bivy_net_etc_files(const struct bivy_config *cfg, bool *hosts, bool *resolv, bivy_error_t *err);

/* Wire the network namespace of the (already created, not yet started) container process
 * `pid` according to the config's annotations. Returns a JSON object describing what was
 * set up (for the state file; NULL when nothing was done). On failure nothing is left. */
int bivy_net_setup(const char *state_root, const char *id, const struct bivy_config *cfg, pid_t pid,
                   json_t **net_state, bivy_error_t *err);

/* Undo bivy_net_setup from its state JSON (veth, nft rules, lease). Idempotent. */
int bivy_net_teardown(const char *state_root, const char *id, json_t *net_state, bivy_error_t *err);

/* `bivy net`: bridge networks in the store ROOT/net/NAME (NAME = bridge interface name). */
/* Array of {"name","bridge","subnet","gateway","mtu","leases","bridgePresent"}. */
int bivy_net_list(const char *state_root, json_t **out, bivy_error_t *err);
/* One network with "containers" [{"id","ip","publish"}], "bridgePorts", "ipForward". */
int bivy_net_inspect(const char *state_root, const char *name, json_t **out, bivy_error_t *err);
/* Define NAME (subnet NULL: first free 10.207.N.0/24; mtu 0: 1500) and create its bridge. */
int bivy_net_create(const char *state_root, const char *name, const char *subnet, unsigned mtu, bivy_error_t *err);
/* Remove the bridge, its masquerade rule and its store entry; EBUSY while any container
 * holds a lease or the bridge has ports. */
int bivy_net_remove(const char *state_root, const char *name, bivy_error_t *err);

#endif
