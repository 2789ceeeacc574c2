/* Options shared by `bivy create` and `bivy run` (not a verb). */
#ifndef BIVY_CREATE_OPTS_H
#define BIVY_CREATE_OPTS_H

#include <stdbool.h>

#include "runtime/container.h"
#include "tools/bivy/cli.h"

/* Parse [-b DIR] [--pid-file F] [--console-socket S] [--preserve-fds N] [--no-pivot]
 * [--no-new-keyring] ID (plus -d/--detach when detach != NULL) into o. */
int bivy_cli_parse_create(struct bivy_global *g, const char *verb, int argc, char **argv,
                          struct bivy_create_opts *o, bool *detach, bivy_error_t *err);

#endif
