/* The container lifecycle: create, start, state, kill, delete, exec (OCI runtime spec
 * "Operations"). The CLI verbs under tools/bivy/ are thin wrappers around these.
 *
 * create clones the container init straight from this process (clone3, no re-exec of a
 * binary from disk) and drives it through a small sync protocol over a SOCK_SEQPACKET
 * socketpair (runtime/sync.h). The init then blocks opening ROOT/ID/exec.fifo for writing;
 * start opens it for reading, which releases the init into startContainer hooks + execve.
 * Errors the init hits after that (hook failure, execve failure) are written into the fifo
 * and reported by start; a successful execve closes the (O_CLOEXEC) fifo so start reads EOF. */
#ifndef BIVY_CONTAINER_H
#define BIVY_CONTAINER_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "runtime/config.h"
#include "runtime/error.h"

typedef void (*bivy_debug_fn)(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

struct bivy_create_opts {
  const char *root;           /* state root */
  const char *id;
  const char *bundle;         /* NULL = cwd */
  const char *pid_file;       /* may be NULL */
  const char *console_socket; /* may be NULL */
  int preserve_fds;           /* fds 3..3+N-1 are passed to the container */
  bool no_pivot;
  bool no_new_keyring;
  bivy_debug_fn debug;        /* start-up time stamps; may be NULL */
  const int *stdio;           /* NULL = inherit; else 3 fds (>= 3) dup2'd onto the init's 0,1,2 (bivyd log capture) */
};

/* Create the container (status "created"). On success *pid (and *pidfd when not NULL; the
 * caller closes it) describe the init, still a child of this process. On failure nothing is
 * left: the half-made process is killed, the cgroup destroyed, the network torn down and
 * the state directory removed. */
int bivy_container_create(const struct bivy_create_opts *o, pid_t *pid, int *pidfd, bivy_error_t *err);

/* Start a created container (runs poststart hooks after the user program started). */
int bivy_container_start(const char *root, const char *id, bivy_error_t *err);

/* The OCI state of a container (ociVersion, id, status, pid, bundle, annotations [, created]). */
int bivy_container_state(const char *root, const char *id, json_t **out, bivy_error_t *err);

/* Send sig to the init (all: to every process in the container's cgroup). */
int bivy_container_kill(const char *root, const char *id, int sig, bool all, bivy_error_t *err);

/* Delete a stopped container (force: kill it first). Runs poststop hooks. */
int bivy_container_delete(const char *root, const char *id, bool force, bivy_error_t *err);

/* Pids in the container's cgroup. */
int bivy_container_pids(const char *root, const char *id, pid_t **pids, size_t *n, bivy_error_t *err);

/* Signal name ("KILL", "SIGKILL", "9", "kill") -> number; -EINVAL when unknown. */
int bivy_signal_parse(const char *s);

struct bivy_exec_opts {
  const char *root, *id;
  const char *process_file;   /* --process: an OCI process JSON (overrides the rest) */
  char **args;                /* NULL-terminated */
  char **env;                 /* extra K=V (override the container's) */
  const char *cwd;
  bool has_user;
  uid_t uid;
  gid_t gid;
  bool has_gid;
  char **caps;                /* extra capabilities (names) */
  bool tty;
  const char *console_socket;
  const char *pid_file;
  int preserve_fds;
  bool detach;
  bivy_debug_fn debug;
};

/* Run a process in a running container. Foreground: returns its exit status (128+N for
 * a signal). Detached: returns 0 once the process has been exec'd; *pid gets its pid. */
int bivy_container_exec(const struct bivy_exec_opts *o, pid_t *pid, bivy_error_t *err);

/* Wait for the process behind pidfd, forwarding SIGINT/TERM/HUP/QUIT/USR1/USR2 to it.
 * Returns the exit status (128+N for a signal). */
int bivy_wait_forward(int pidfd, pid_t pid, bivy_error_t *err);

#endif
