/* bivyd layer 3 (supervision): bivyd starting over existing state: every instance record
 * is loaded; a live init is re-adopted (no restart, no duplicate), a dead one is brought back
 * or not by its restart policy. */
#ifndef BIVYD_READOPT_H
#define BIVYD_READOPT_H

#include "runtime/error.h"

int insts_load(bivy_error_t *err);

#endif
