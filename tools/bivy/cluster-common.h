/* Shared by bivy migrate, drain and undrain (cluster mode): waiting for moves. Not a verb. */
#ifndef BIVY_CLUSTER_COMMON_H
#define BIVY_CLUSTER_COMMON_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/error.h"
#include "tools/bivy/cli.h"

/* Poll `ls` every 100 ms for up to timeout_ms: name != NULL: until instance name runs on
 * node; name == NULL: until no instance is placed on node any more. */
int bivy_cl_wait(struct bivy_global *g, const char *verb, const char *name, const char *node, uint64_t timeout_ms,
                 bivy_error_t *err);

#endif
