/* OCI linux.seccomp through libseccomp, with a cache of compiled BPF programs. */
#ifndef BIVY_SECCOMP_H
#define BIVY_SECCOMP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "runtime/error.h"

struct bivy_seccomp; /* opaque: a compiled, ready-to-load filter */

/* Validate and compile linux.seccomp (NULL = no filter; *out = NULL). Runs in the runtime
 * before the container process is created. cache_dir (may be NULL) holds compiled programs
 * keyed by a hash of profile + arch + libseccomp version. Errors name the JSON path:
 * "linux.seccomp.syscalls[12].args[0].op: unknown operator \"EQUALS\"".
 * JSON null and an allow-everything profile ({"defaultAction":"SCMP_ACT_ALLOW"} with no
 * syscalls and no flags) also give *out = NULL: such a filter would only cost time.
 * Syscall names this libseccomp does not know are skipped with one warning on stderr
 * ("bivy: warning: seccomp: unknown syscall \"x\" skipped"). The cache directory is created
 * 0700 and used only when it is owned by the caller and not group/world-writable; an entry
 * is used only after every header field, the checksum and the stored profile text match,
 * else it is rebuilt (written atomically). A cache failure never fails the prepare. */
int bivy_seccomp_prepare(json_t *seccomp, const char *cache_dir, struct bivy_seccomp **out,
                         bivy_error_t *err);

/* In the container process, as the last step before exec: load the filter.
 * *notify_fd receives the listener fd when the profile uses SCMP_ACT_NOTIFY, else -1.
 * On success makes no allocation and one system call (seccomp(SECCOMP_SET_MODE_FILTER)), so it is
 * safe after clone/fork. Loading needs no_new_privs OR CAP_SYS_ADMIN: with
 * process.noNewPrivileges set prctl(PR_SET_NO_NEW_PRIVS) first; without it, call this while
 * CAP_SYS_ADMIN is still effective (before dropping capabilities), as runc does.
 * Everything the process does after this call until exec (write/read of the sync socket,
 * sendmsg of the notify fd, open of the exec fifo, startContainer hooks, execve) is subject
 * to the filter: the built-in profiles allow these. s == NULL: nothing to do. */
int bivy_seccomp_install(struct bivy_seccomp *s, int *notify_fd, bivy_error_t *err);

/* listenerPath / listenerMetadata of the profile (NULL when absent). */
const char *bivy_seccomp_listener_path(const struct bivy_seccomp *s);
const char *bivy_seccomp_listener_metadata(const struct bivy_seccomp *s);
/* The profile uses SCMP_ACT_NOTIFY: install returns a listener fd to pass on. */
bool bivy_seccomp_has_notify(const struct bivy_seccomp *s);
/* For --debug and tests: the program came from cache_dir; its length in BPF instructions. */
bool bivy_seccomp_from_cache(const struct bivy_seccomp *s);
size_t bivy_seccomp_program_size(const struct bivy_seccomp *s);

/* Send the notify fd plus the container state (OCI state JSON text) to listenerPath, as
 * the runtime spec defines (SCM_RIGHTS, containerProcessState). */
int bivy_seccomp_send_listener(const struct bivy_seccomp *s, int notify_fd, const char *state_json,
                               pid_t pid, bivy_error_t *err);

void bivy_seccomp_free(struct bivy_seccomp *s);

/* Built-in profile text (an OCI linux.seccomp object, JSON) by name, or NULL for an unknown
 * name. "default": allow-list with ERRNO(EPERM) as default action, resolved for the default
 * capability set of `bivy spec` (AUDIT_WRITE, KILL, NET_BIND_SERVICE): granting more (e.g.
 * CAP_SYS_ADMIN) needs bivy_seccomp_builtin_for_caps() or a custom profile.
 * "unconfined": {"defaultAction":"SCMP_ACT_ALLOW"}, which bivy_seccomp_prepare() turns into
 * no filter at all (callers may as well omit linux.seccomp). The string is static. */
const char *bivy_seccomp_builtin(const char *name);

/* The built-in profile `name` resolved for a capability set (bitmask over CAP_* numbers, as
 * struct bivy_capset): entries of the data file carry moby-style
 * "includes"/"excludes": {"caps": [...]} that are kept when ALL included caps are in `caps`
 * and NONE of the excluded ones is; the architectures follow the native one. *out is a new
 * OCI linux.seccomp object. -EINVAL for an unknown name. */
int bivy_seccomp_builtin_for_caps(const char *name, uint64_t caps, json_t **out, bivy_error_t *err);

/* Names of the built-in profiles, NULL-terminated (for --help texts and `features`). */
extern const char *const bivy_seccomp_builtin_names[];

#endif
