/* Checkpoint and restore of a container through CRIU (the `criu` command line, Debian's
 * criu 3.17): `bivy checkpoint` dumps the container's process tree into an image directory,
 * `bivy restore` creates a container from a bundle whose init is the restored tree.
 *
 * What is supported: containers with their own pid, mount, uts, ipc, cgroup and network
 * namespaces (the network namespace with only what CRIU restores itself: loopback, no
 * bivy-wired network), no user namespace, no terminal. The container's bind mounts are
 * CRIU "external" mounts keyed by their destination and re-bound from the bundle's sources
 * at restore; proc, sysfs, devpts, mqueue, cgroup and tmpfs mounts (with their contents) are
 * CRIU's own. The rootfs is bind-mounted on a private directory in the new state directory
 * for CRIU's --root. Stdio of the init that lies outside the container is recorded at
 * checkpoint (IMAGES/bivy-checkpoint.json): at restore pipes and sockets become the stdio of
 * `bivy restore`, host files (/dev/null, a log file) are reopened by path (criu checks the
 * file type, so /dev/null cannot become a regular file) and passed with criu --inherit-fd. The restored tree goes into
 * the new container's cgroup (criu --cgroup-root).
 *
 * CRIU needs kernel support (criu 3.17 fails its vDSO check on recent kernels): both
 * operations first run `criu check` (result cached per boot in ROOT/#criu-check) and fail
 * fast with its first error line, before touching anything. */
#ifndef BIVY_CHECKPOINT_H
#define BIVY_CHECKPOINT_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "runtime/error.h"

/* Name of the file bivy adds to the image directory (stdio keys, shell job, source id). */
#define BIVY_CKPT_META "bivy-checkpoint.json"

struct bivy_checkpoint_opts {
  const char *root, *id;
  const char *image_path; /* required; created when missing, else must be an empty writable dir */
  const char *work_path;  /* CRIU logs; NULL = image_path */
  bool leave_running;
  bool tcp_established;
};

struct bivy_restore_opts {
  const char *root, *id;
  const char *image_path; /* required: a checkpoint made by bivy checkpoint */
  const char *work_path;  /* NULL = image_path */
  const char *bundle;     /* NULL = cwd */
  const char *pid_file;   /* may be NULL */
  const int *stdio;       /* NULL = this process's 0,1,2; else 3 fds: what the restored init's
                             outside stdio pipes and sockets become (host files it had open,
                             such as /dev/null or a log file, are reopened by path) */
};

/* ---- pure parts (unit-tested) ---- */

/* What `criu dump` gets. ext_mounts: destinations of the bind mounts (NULL-terminated or
 * NULL); ext_res: extra --external resources ("file[1f:2a]", "unix[123]"). */
struct bivy_criu_dump {
  pid_t pid;
  const char *image_dir, *work_dir;
  bool leave_running, tcp_established, shell_job;
  char *const *ext_mounts;
  char *const *ext_res;
};
/* argv for `criu dump` (argv[0] = criu), NULL-terminated, caller frees (bivy_strvfreep). */
int bivy_criu_dump_argv(const char *criu, const struct bivy_criu_dump *d, char ***argv, bivy_error_t *err);

/* What `criu restore` gets. ext_mounts: pairs {destination, host source} (NULL-terminated
 * list of 2*n strings); inherit[i]: the image's key (e.g. "pipe:[123]", "file[2a:1f]") that
 * criu's fd i replaces, or NULL: fds 0-2 are the restorer's stdio, 3-5 host files bivy
 * reopened. A key shared by several fds is passed once (order 1, 2, 0, 3, 4, 5).
 * cgroup_root: the container's cgroup path from the hierarchy root ("/bivy/c1"), or NULL. */
struct bivy_criu_restore {
  const char *image_dir, *work_dir, *root_dir, *pid_file, *cgroup_root;
  bool shell_job, tcp_established;
  char *const *ext_mounts;
  const char *inherit[6];
};
int bivy_criu_restore_argv(const char *criu, const struct bivy_criu_restore *r, char ***argv, bivy_error_t *err);

/* The first line of CRIU output (a log or `criu check` output) that reports an error
 * ("Error (...)" or "... error ..."), without its trailing newline; malloc'd; NULL when none. */
char *bivy_criu_first_error(const char *text);

/* Check the options of a checkpoint/restore before anything is touched: required flags,
 * ID. verb is "checkpoint" or "restore" (names the flag in errors). */
int bivy_checkpoint_opts_check(const struct bivy_checkpoint_opts *o, bivy_error_t *err);
int bivy_restore_opts_check(const struct bivy_restore_opts *o, bivy_error_t *err);

/* ---- operations ---- */

/* `criu check`, cached per boot (and per criu binary) in ROOT/#criu-check. Returns 0 when
 * CRIU can checkpoint here, else -ENOTSUP with err "CRIU cannot checkpoint on this kernel:
 * criu check: <first error line>" (-ENOENT when criu is not installed). */
int bivy_criu_check(const char *root, bivy_error_t *err);

/* Checkpoint a running container. *info (when not NULL) gets {"id","imagePath","workPath",
 * "pid","leftRunning","status"}. On failure the container is left as it was (running) and
 * the image directory holds nothing bivy or CRIU wrote (removed when bivy created it). */
int bivy_container_checkpoint(const struct bivy_checkpoint_opts *o, json_t **info, bivy_error_t *err);

/* Restore container o->id from the checkpoint in o->image_path with the bundle's config
 * (cgroup, mounts). On success the container is "running" with the restored process as init;
 * *pid (and *pidfd when not NULL; caller closes) describe it: the init is reparented to this
 * process (a child subreaper), so the caller can wait for it. On failure nothing is left:
 * no state directory, no cgroup, no restored process, no mount. */
int bivy_container_restore(const struct bivy_restore_opts *o, pid_t *pid, int *pidfd, bivy_error_t *err);

#endif
