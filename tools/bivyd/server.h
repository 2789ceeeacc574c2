/* bivyd layer 5 (control API): the control socket (unix, line-delimited JSON, root only). */
#ifndef BIVYD_SERVER_H
#define BIVYD_SERVER_H

#include "runtime/error.h"

int bivyd_server_open(bivy_error_t *err);

#endif
