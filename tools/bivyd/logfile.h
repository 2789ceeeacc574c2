/* bivyd layer 3 (supervision): instance log files STATE/logs/NAME.log (+ .log.1), written by
 * the instances themselves, size-capped by bivyd. */
#ifndef BIVYD_LOGFILE_H
#define BIVYD_LOGFILE_H

#include <jansson.h>
#include <stddef.h>

#include "runtime/error.h"

struct bivyd_inst;

/* open in->log_fd (O_APPEND) if not open */
int logs_open(struct bivyd_inst *in, bivy_error_t *err);
/* the last `lines` lines (-1 = all) of both files */
int logs_tail(const char *name, long lines, char **out, size_t *len, bivy_error_t *err);
/* a JSON string of bytes (invalid UTF-8 -> '?') */
json_t *json_text(const char *buf, size_t len);
/* start the rotation check (every 250 ms) */
void logfile_init(void);

#endif
