/* OCI linux.seccomp through libseccomp, with a cache of compiled BPF programs. */
#ifndef BIVY_SECCOMP_H
#define BIVY_SECCOMP_H

#include <jansson.h>
#include <stdbool.h>

#include "runtime/error.h"

struct bivy_seccomp; /* opaque: a compiled, ready-to-load filter */

/* Validate and compile linux.seccomp (NULL = no filter; *out = NULL). Runs in the runtime
 * before the container process is created. cache_dir (may be NULL) holds compiled programs
 * keyed by a hash of profile + arch + libseccomp version. Errors name the JSON path:
 * "linux.seccomp.syscalls[12].args[0].op: unknown operator \"EQUALS\"". */
int bivy_seccomp_prepare(json_t *seccomp, const char *cache_dir, struct bivy_seccomp **out,
                         bivy_error_t *err);

/* In the container process, as the last step before exec: load the filter.
 * *notify_fd receives the listener fd when the profile uses SCMP_ACT_NOTIFY, else -1. */
int bivy_seccomp_install(struct bivy_seccomp *s, int *notify_fd, bivy_error_t *err);

/* listenerPath / listenerMetadata of the profile (NULL when absent). */
const char *bivy_seccomp_listener_path(const struct bivy_seccomp *s);

/* Send the notify fd plus the container state (OCI state JSON text) to listenerPath, as
 * the runtime spec defines (SCM_RIGHTS, containerProcessState). */
int bivy_seccomp_send_listener(const struct bivy_seccomp *s, int notify_fd, const char *state_json,
                               pid_t pid, bivy_error_t *err);

void bivy_seccomp_free(struct bivy_seccomp *s);

/* Built-in profile text by name ("default", "unconfined"), or NULL. */
const char *bivy_seccomp_builtin(const char *name);

#endif
