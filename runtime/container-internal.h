/* Private to the lifecycle code (runtime/container*.c, sync.c, process-init.c, exec.c). */
#ifndef BIVY_CONTAINER_INTERNAL_H
#define BIVY_CONTAINER_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "runtime/config.h"
#include "runtime/container.h"
#include "runtime/error.h"
#include "runtime/linux.h"
#include "runtime/seccomp.h"

/* The sync protocol between the runtime (parent) and the process it cloned (child), over a
 * SOCK_SEQPACKET socketpair, one message per packet:
 *   parent -> child  GO            cgroup joined, id maps written, network set up; .pid is
 *                                  the child's pid as the runtime sees it
 *   child  -> parent PHASE0_DONE   namespaces ready, rootfs mounts done (before pivot)
 *   parent -> child  HOOKS_DONE    createRuntime (+ prestart) hooks ran
 *   child  -> parent PTY           the pty master (SCM_RIGHTS) for --console-socket
 *   child  -> parent SECCOMP       the seccomp notify fd (SCM_RIGHTS) for listenerPath
 *   child  -> parent READY         set up; about to block on the exec fifo
 *   child  -> parent ERROR         .text says what failed; the child exits
 * For exec, a successful execve closes the child's (O_CLOEXEC) end: the parent reads EOF. */
enum bivy_sync_type {
  BIVY_SYNC_GO = 1,
  BIVY_SYNC_PHASE0_DONE,
  BIVY_SYNC_HOOKS_DONE,
  BIVY_SYNC_PTY,
  BIVY_SYNC_SECCOMP,
  BIVY_SYNC_READY,
  BIVY_SYNC_ERROR,
};

struct bivy_sync_msg {
  uint32_t type;
  int32_t code; /* ERROR: negative errno */
  int32_t pid;  /* GO */
  char text[2048];
};

/* Send a message (text may be NULL; fd >= 0 is passed with SCM_RIGHTS). */
int bivy_sync_send(int sock, enum bivy_sync_type type, int code, int pid, const char *text, int fd);
/* Receive one message. *fd (when not NULL) gets a passed fd or -1. Returns 0, or -EPIPE
 * on EOF (peer closed), or -errno. */
int bivy_sync_recv(int sock, struct bivy_sync_msg *m, int *fd);
/* Child side: report err (prefixed with what) and _exit(code). */
__attribute__((noreturn)) void bivy_sync_die(int sock, int status, const char *what, bivy_error_t *err);

/* Everything the cloned container init needs; it lives in the parent's memory, which the
 * child has a copy of. */
struct bivy_init_args {
  const struct bivy_config *cfg;
  const struct bivy_plan *plan;
  struct bivy_seccomp *seccomp;
  const char *id;
  int sync_fd;
  int lock_fd;            /* the runtime's state lock: closed first thing (a flock is shared
                             with the child's copy of the fd and must not outlive create) */
  int fifo_fd;            /* O_PATH fd of ROOT/ID/exec.fifo */
  int preserve_fds;
  bool no_new_keyring;
  bool unshare_cgroupns;
  bool userns;            /* in a new or joined user namespace: become its root first */  /* CLONE_NEWCGROUP after the parent put us in the cgroup */
  int user_ns_fd;         /* joined by path (or -1) */
  int ns_fds[BIVY_NS_COUNT]; /* other namespaces joined by path (or -1) */
  int unshare_flags;      /* namespaces to unshare after joining the user namespace */
  const int *stdio;       /* bivy_create_opts.stdio: NULL or 3 fds for 0,1,2 */
};

/* The container init (child of clone3): never returns. */
__attribute__((noreturn)) void bivy_init_main(struct bivy_init_args *a);

/* OCI state JSON (ociVersion, id, status, pid, bundle, annotations) as hooks get it. */
json_t *bivy_oci_state(const char *id, const char *status, pid_t pid, const char *bundle,
                       const struct bivy_config *cfg);
struct bivy_cgroup;
/* The state record of a new container: the OCI state plus what bivy keeps (the init's start
 * time against pid reuse, creation time, rootfs, cgroup, resources). NULL with err = "what
 * (pid N)" when the init is already gone. */
json_t *bivy_state_record(const char *id, const char *status, pid_t pid, const char *bundle,
                          const struct bivy_config *cfg, struct bivy_cgroup *cg, bool has_process, const char *what,
                          bivy_error_t *err);
/* Write a new container's config.json and state.json, then its --pid-file (pid_file may be NULL). */
int bivy_state_record_save(const char *root, const char *id, json_t *st, const struct bivy_config *cfg, pid_t pid,
                           const char *pid_file, bivy_error_t *err);

/* Resolve the executable of args[0] in the process env's PATH (as execvp does), in the
 * current root. Returns a malloc'd path, or NULL with errno set. */
char *bivy_find_executable(const char *name, char *const *env);

/* Make fds >= first CLOEXEC (so execve drops them), keep 3..3+preserve-1 inheritable. */
int bivy_prepare_fds(int preserve_fds, bivy_error_t *err);

/* chdir(cwd) and check that the result is inside the current root (refuses a cwd that
 * escapes, e.g. /proc/self/fd/N naming a host directory: CVE-2024-21626). */
int bivy_chdir_checked(const char *cwd, bivy_error_t *err);

/* raw syscalls glibc 2.36 does not wrap */
pid_t bivy_clone3(uint64_t flags, int cgroup_fd, int *pidfd);
int bivy_pidfd_open(pid_t pid);
int bivy_pidfd_send_signal(int pidfd, int sig);
/* Right before execve: unblock every signal and restore default dispositions, so the program
 * does not inherit the caller's mask or ignored signals (a supervisor blocking SIGTERM would
 * otherwise make its containers deaf to `kill`). */
void bivy_reset_signals(void);

/* Load ROOT/ID/config.json saved at create (the container's config as it was created). */
int bivy_saved_config_load(const char *root, const char *id, const char *bundle, struct bivy_config **out,
                           bivy_error_t *err);

#endif
