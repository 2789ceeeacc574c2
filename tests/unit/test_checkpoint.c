/* The pure parts of checkpoint/restore: CRIU argument lists, option checks, picking CRIU's
 * error line. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "runtime/checkpoint.h"
#include "runtime/cleanup.h"

/* index of the first argument equal to s, -1 if none */
static int find(char **v, const char *s) {
  for (int i = 0; v[i]; i++)
    if (strcmp(v[i], s) == 0) return i;
  return -1;
}
/* the argument after flag */
static const char *after(char **v, const char *flag) {
  int i = find(v, flag);
  return i >= 0 ? v[i + 1] : NULL;
}

Test(checkpoint, dump_argv_basic) {
  _cleanup_error_ bivy_error_t err = NULL;
  _cleanup_strv_ char **v = NULL;
  struct bivy_criu_dump d = {.pid = 42, .image_dir = "/img"};
  cr_assert_eq(bivy_criu_dump_argv("criu", &d, &v, &err), 0);
  cr_assert_str_eq(v[0], "criu");
  cr_assert_str_eq(v[1], "dump");
  cr_assert_str_eq(after(v, "--tree"), "42");
  cr_assert_str_eq(after(v, "--images-dir"), "/img");
  cr_assert_str_eq(after(v, "--work-dir"), "/img", "work dir defaults to the image dir");
  cr_assert_str_eq(after(v, "--log-file"), "dump.log");
  cr_assert_geq(find(v, "--no-default-config"), 0, "a criu.conf must not change what bivy asked for");
  cr_assert_lt(find(v, "--leave-running"), 0);
  cr_assert_lt(find(v, "--tcp-established"), 0);
  cr_assert_lt(find(v, "--shell-job"), 0);
  cr_assert_lt(find(v, "--external"), 0);
}

Test(checkpoint, dump_argv_options_and_externals) {
  _cleanup_error_ bivy_error_t err = NULL;
  _cleanup_strv_ char **v = NULL;
  char *mounts[] = {"/data", "/etc/app", NULL};
  char *res[] = {"file[2a:1f]", NULL};
  struct bivy_criu_dump d = {.pid = 7, .image_dir = "/img", .work_dir = "/work", .leave_running = true,
                             .tcp_established = true, .ext_mounts = mounts, .ext_res = res};
  cr_assert_eq(bivy_criu_dump_argv("/usr/sbin/criu", &d, &v, &err), 0);
  cr_assert_str_eq(after(v, "--work-dir"), "/work");
  cr_assert_geq(find(v, "--leave-running"), 0);
  cr_assert_geq(find(v, "--tcp-established"), 0);
  /* bind mounts are external, keyed by their destination */
  cr_assert_geq(find(v, "mnt[/data]:/data"), 0);
  cr_assert_geq(find(v, "mnt[/etc/app]:/etc/app"), 0);
  int i = find(v, "file[2a:1f]");
  cr_assert_gt(i, 0);
  cr_assert_str_eq(v[i - 1], "--external");
}

Test(checkpoint, dump_argv_refuses_missing_pieces) {
  _cleanup_error_ bivy_error_t err = NULL;
  char **v = NULL;
  struct bivy_criu_dump d = {.pid = 0, .image_dir = "/img"};
  cr_assert_eq(bivy_criu_dump_argv("criu", &d, &v, &err), -EINVAL);
  cr_assert_null(v);
  d.pid = 5;
  d.image_dir = "";
  cr_assert_eq(bivy_criu_dump_argv("criu", &d, &v, &err), -EINVAL);
  cr_assert(strstr(err->msg, "--image-path") != NULL, "%s", err->msg);
}

Test(checkpoint, restore_argv) {
  _cleanup_error_ bivy_error_t err = NULL;
  _cleanup_strv_ char **v = NULL;
  char *pairs[] = {"/data", "/srv/data", NULL};
  struct bivy_criu_restore r = {.image_dir = "/img", .root_dir = "/run/bivy/r1/criu-root", .pid_file = "/run/bivy/r1/criu.pid",
                                .cgroup_root = "/bivy/r1", .ext_mounts = pairs,
                                .inherit = {NULL, "pipe:[1234]", "file[2a:1f]"}};
  cr_assert_eq(bivy_criu_restore_argv("criu", &r, &v, &err), 0);
  cr_assert_str_eq(v[1], "restore");
  cr_assert_str_eq(after(v, "--images-dir"), "/img");
  cr_assert_str_eq(after(v, "--root"), "/run/bivy/r1/criu-root");
  cr_assert_str_eq(after(v, "--pidfile"), "/run/bivy/r1/criu.pid");
  cr_assert_str_eq(after(v, "--cgroup-root"), "/bivy/r1");
  cr_assert_str_eq(after(v, "--log-file"), "restore.log");
  cr_assert_geq(find(v, "--restore-detached"), 0);
  cr_assert_geq(find(v, "mnt[/data]:/srv/data"), 0, "external mount: destination key -> host source");
  cr_assert_lt(find(v, "fd[0]:"), 0);
  cr_assert_geq(find(v, "fd[1]:pipe:[1234]"), 0);
  cr_assert_geq(find(v, "fd[2]:file[2a:1f]"), 0);
  cr_assert_lt(find(v, "--shell-job"), 0);
}

Test(checkpoint, restore_argv_one_fd_per_shared_key) {
  _cleanup_error_ bivy_error_t err = NULL;
  _cleanup_strv_ char **v = NULL;
  /* stdout and stderr on one pipe; stdin and a reopened stderr file on one host file */
  struct bivy_criu_restore r = {.image_dir = "/img", .root_dir = "/r", .pid_file = "/p",
                                .inherit = {NULL, "pipe:[7]", "pipe:[7]", "file[2a:1f]", NULL, "file[2a:1f]"}};
  cr_assert_eq(bivy_criu_restore_argv("criu", &r, &v, &err), 0);
  cr_assert_geq(find(v, "fd[1]:pipe:[7]"), 0, "stdout wins");
  cr_assert_lt(find(v, "fd[2]:pipe:[7]"), 0, "one restorer fd per key");
  cr_assert_geq(find(v, "fd[3]:file[2a:1f]"), 0);
  cr_assert_lt(find(v, "fd[5]:file[2a:1f]"), 0, "one restorer fd per key");
}

Test(checkpoint, restore_argv_needs_root_and_pidfile) {
  _cleanup_error_ bivy_error_t err = NULL;
  char **v = NULL;
  struct bivy_criu_restore r = {.image_dir = "/img"};
  cr_assert_eq(bivy_criu_restore_argv("criu", &r, &v, &err), -EINVAL);
  cr_assert_null(v);
}

Test(checkpoint, first_error_line) {
  const char *log = "(00.000343) Version: 3.17.1 (gitid 0)\n"
                    "(00.842664) Error (criu/mount.c:753): mnt: 60:./data doesn't have a proper root mount\n"
                    "(01.003772) Error (criu/cr-dump.c:2053): Dumping FAILED.\n";
  _cleanup_free_ char *l = bivy_criu_first_error(log);
  cr_assert_str_eq(l, "Error (criu/mount.c:753): mnt: 60:./data doesn't have a proper root mount");
  /* `criu check` output has no time stamps */
  _cleanup_free_ char *c = bivy_criu_first_error("Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds\nError (x): y\n");
  cr_assert_str_eq(c, "Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds");
  /* without an "Error" line, a line that says it failed */
  _cleanup_free_ char *f = bivy_criu_first_error("Looks good.\nsomething failed here\n");
  cr_assert_str_eq(f, "something failed here");
  cr_assert_null(bivy_criu_first_error("Looks good.\n"));
  cr_assert_null(bivy_criu_first_error(""));
  cr_assert_null(bivy_criu_first_error(NULL));
}

Test(checkpoint, option_checks_name_the_flag) {
  _cleanup_error_ bivy_error_t err = NULL;
  struct bivy_checkpoint_opts o = {.root = "/run/bivy", .id = "c1"};
  cr_assert_eq(bivy_checkpoint_opts_check(&o, &err), -EINVAL);
  cr_assert(strstr(err->msg, "--image-path") != NULL, "%s", err->msg);
  o.image_path = "/img";
  cr_assert_eq(bivy_checkpoint_opts_check(&o, &err), 0);
  o.work_path = "";
  cr_assert_eq(bivy_checkpoint_opts_check(&o, &err), -EINVAL);
  cr_assert(strstr(err->msg, "--work-path") != NULL, "%s", err->msg);
  o.work_path = NULL;
  o.id = "../x";
  cr_assert_eq(bivy_checkpoint_opts_check(&o, &err), -EINVAL);
  cr_assert(strstr(err->msg, "invalid container ID") != NULL, "%s", err->msg);

  struct bivy_restore_opts r = {.root = "/run/bivy", .id = "r1", .image_path = "/img"};
  cr_assert_eq(bivy_restore_opts_check(&r, &err), 0);
  r.bundle = "";
  cr_assert_eq(bivy_restore_opts_check(&r, &err), -EINVAL);
  cr_assert(strstr(err->msg, "--bundle") != NULL, "%s", err->msg);
  r.bundle = NULL;
  r.image_path = NULL;
  cr_assert_eq(bivy_restore_opts_check(&r, &err), -EINVAL);
  cr_assert(strstr(err->msg, "restore: --image-path") != NULL, "%s", err->msg);
}
