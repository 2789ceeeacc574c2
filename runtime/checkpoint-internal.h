/* Private to runtime/checkpoint.c and runtime/restore.c. */
#ifndef BIVY_CHECKPOINT_INTERNAL_H
#define BIVY_CHECKPOINT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/error.h"

/* The criu binary: $BIVY_CRIU, else "criu" from PATH. */
const char *bivy_criu_binary(void);

/* Run argv (argv[0] from PATH). fds[i] (i < nfds) becomes the child's fd i; -1 keeps this
 * process's fd i (nfds 0: inherit 0,1,2). Returns the exit status (>= 0, 128+N for a signal)
 * or -errno (ENOENT: not installed). */
int bivy_criu_run(char *const *argv, const int *fds, int nfds, bivy_error_t *err);

/* The error to report after a failed CRIU run: "<what>: criu exited with status N: <first
 * error line of the log> (log: PATH)" (log at dir/log_name, moved to keep_as when not NULL). */
int bivy_criu_failed(bivy_error_t *err, const char *what, int status, const char *dir, const char *log_name,
                     const char *keep_as);

/* A bind mount of the config (bind, rbind or type "bind"): external to CRIU. */
struct bivy_mount;
bool bivy_ckpt_is_bind(const struct bivy_mount *m);

/* Resolve path (which may not exist yet) to an absolute path: realpath of the parent + name. */
char *bivy_ckpt_abspath(const char *path);

#endif
