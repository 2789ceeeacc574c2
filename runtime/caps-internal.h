/* Private to runtime/caps.c and runtime/process.c. */
#ifndef BIVY_CAPS_INTERNAL_H
#define BIVY_CAPS_INTERNAL_H

#include "runtime/config.h"
#include "runtime/error.h"

/* Drop every capability not in process.capabilities.bounding from the bounding set. */
int bivy_caps_drop_bounding(const struct bivy_process *p, bivy_error_t *err);
/* Set effective/permitted/inheritable exactly as configured, then the ambient set. */
int bivy_caps_apply_sets(const struct bivy_process *p, bivy_error_t *err);

#endif
