/* bivyd layer 1 (loop): the settings, with their defaults (see conf.h). */
#include "tools/bivyd/conf.h"

#include "tools/bivyd/policy/instance-policy.h"

struct bivyd_conf D = {.root = "/run/bivy",
                       .state_dir = "/var/lib/bivy",
                       .socket_path = "/run/bivy/bivyd.sock",
                       .cgroup_parent = "bivyd",
                       .max_backoff_ms = BIVY_SV_DEFAULT_MAX_BACKOFF_MS,
                       .log_max = 1024 * 1024,
                       .devnull = -1,
                       .self_pidns = -1};
