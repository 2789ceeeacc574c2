/* Unit tests of the lifecycle library: runtime/state.c and signal names (suites lifecycle_*). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/state.h"
#include "runtime/util.h"

static char *mkroot(void) {
  char tmpl[] = "/tmp/bivy-state-XXXXXX";
  cr_assert_not_null(mkdtemp(tmpl));
  char *root = NULL;
  cr_assert(asprintf(&root, "%s/root", tmpl) > 0);
  return root;
}

static void rmroot(char *root) {
  char *parent = strdup(root);
  *strrchr(parent, '/') = '\0';
  bivy_rm_rf(parent, NULL);
  free(parent);
  free(root);
}

Test(lifecycle_state, create_lock_save_load_remove) {
  char *root = mkroot();
  _cleanup_error_ bivy_error_t err = NULL;
  int fd = bivy_state_create(root, "c1", &err);
  cr_assert_geq(fd, 0, "%s", err ? err->msg : "");
  struct stat st;
  cr_assert_eq(stat(root, &st), 0);
  cr_assert_eq(st.st_mode & 0777, 0700);
  _cleanup_free_ char *dir = bivy_state_path(root, "c1", NULL);
  cr_assert_eq(stat(dir, &st), 0);
  cr_assert_eq(st.st_mode & 0777, 0700);

  /* the lock is held: a second flock must not succeed */
  _cleanup_free_ char *lockp = bivy_state_path(root, "c1", "lock");
  int other = open(lockp, O_RDWR | O_CLOEXEC);
  cr_assert_geq(other, 0);
  cr_assert_eq(flock(other, LOCK_EX | LOCK_NB), -1);
  cr_assert_eq(errno, EWOULDBLOCK);
  close(other);

  /* duplicate */
  cr_assert_eq(bivy_state_create(root, "c1", &err), -EEXIST);
  cr_assert(strstr(err->msg, "already exists"), "%s", err->msg);

  json_t *s = json_pack("{s:s, s:i}", "id", "c1", "pid", 0);
  cr_assert_eq(bivy_state_save(root, "c1", s, &err), 0);
  json_decref(s);
  close(fd);

  fd = bivy_state_lock(root, "c1", &err);
  cr_assert_geq(fd, 0);
  json_t *l = NULL;
  cr_assert_eq(bivy_state_load(root, "c1", &l, &err), 0);
  cr_assert_str_eq(json_string_value(json_object_get(l, "id")), "c1");
  cr_assert_str_eq(bivy_state_refresh(root, "c1", l), "stopped");
  json_decref(l);

  cr_assert_eq(bivy_state_remove(root, "c1", &err), 0);
  close(fd);
  cr_assert_eq(bivy_state_lock(root, "c1", &err), -ENOENT);
  cr_assert(strstr(err->msg, "c1 does not exist"), "%s", err->msg);
  cr_assert_eq(bivy_state_load(root, "c1", &l, &err), -ENOENT);
  rmroot(root);
}

Test(lifecycle_state, invalid_ids_refused) {
  char *root = mkroot();
  _cleanup_error_ bivy_error_t err = NULL;
  cr_assert_eq(bivy_state_create(root, "../x", &err), -EINVAL);
  cr_assert(strstr(err->msg, "invalid container ID"), "%s", err->msg);
  cr_assert_eq(bivy_state_create(root, "..", &err), -EINVAL);
  cr_assert_eq(bivy_state_lock(root, "a/b", &err), -EINVAL);
  rmroot(root);
}

Test(lifecycle_state, list_sorted) {
  char *root = mkroot();
  _cleanup_error_ bivy_error_t err = NULL;
  char **ids = NULL;
  cr_assert_eq(bivy_state_list(root, &ids, &err), 0); /* missing root: empty */
  cr_assert_null(ids[0]);
  bivy_strvfreep(&ids);
  const char *names[] = {"b", "a", "c"};
  for (int i = 0; i < 3; i++) {
    int fd = bivy_state_create(root, names[i], &err);
    cr_assert_geq(fd, 0);
    close(fd);
  }
  cr_assert_eq(bivy_state_list(root, &ids, &err), 0);
  cr_assert_str_eq(ids[0], "a");
  cr_assert_str_eq(ids[1], "b");
  cr_assert_str_eq(ids[2], "c");
  cr_assert_null(ids[3]);
  bivy_strvfreep(&ids);
  rmroot(root);
}

Test(lifecycle_state, live_status_from_pid_and_start_time) {
  char *root = mkroot();
  _cleanup_error_ bivy_error_t err = NULL;
  int fd = bivy_state_create(root, "me", &err);
  cr_assert_geq(fd, 0);
  unsigned long long st = 0;
  cr_assert_eq(bivy_proc_start_time(getpid(), &st), 0);
  cr_assert_gt(st, 0);
  json_t *s = json_pack("{s:i, s:I}", "pid", (int)getpid(), "pid_start", (json_int_t)st);
  cr_assert_str_eq(bivy_state_refresh(root, "me", s), "running");
  _cleanup_free_ char *fifo = bivy_state_path(root, "me", "exec.fifo");
  cr_assert_eq(mkfifo(fifo, 0600), 0);
  cr_assert_str_eq(bivy_state_refresh(root, "me", s), "created");
  json_object_set_new(s, "paused", json_true());
  cr_assert_str_eq(bivy_state_refresh(root, "me", s), "paused");
  /* a reused pid (different start time) is stopped */
  json_object_set_new(s, "pid_start", json_integer((json_int_t)st + 1));
  cr_assert_str_eq(bivy_state_refresh(root, "me", s), "stopped");
  cr_assert_str_eq(json_string_value(json_object_get(s, "status")), "stopped");
  json_decref(s);
  close(fd);
  rmroot(root);
}

#include <signal.h>

#include "runtime/container.h"

Test(lifecycle_signal, names_and_numbers) {
  cr_assert_eq(bivy_signal_parse("KILL"), SIGKILL);
  cr_assert_eq(bivy_signal_parse("SIGKILL"), SIGKILL);
  cr_assert_eq(bivy_signal_parse("kill"), SIGKILL);
  cr_assert_eq(bivy_signal_parse("sigterm"), SIGTERM);
  cr_assert_eq(bivy_signal_parse("9"), 9);
  cr_assert_eq(bivy_signal_parse("15"), 15);
  cr_assert_eq(bivy_signal_parse("USR1"), SIGUSR1);
  cr_assert_eq(bivy_signal_parse("SIGWINCH"), SIGWINCH);
  cr_assert_eq(bivy_signal_parse("RTMIN"), SIGRTMIN);
  cr_assert_eq(bivy_signal_parse("RTMIN+2"), SIGRTMIN + 2);
  cr_assert_eq(bivy_signal_parse("SIGRTMAX-1"), SIGRTMAX - 1);
  cr_assert_eq(bivy_signal_parse("FOO"), -EINVAL);
  cr_assert_eq(bivy_signal_parse("0"), -EINVAL);
  cr_assert_eq(bivy_signal_parse("65"), -EINVAL);
  cr_assert_eq(bivy_signal_parse("9x"), -EINVAL);
  cr_assert_eq(bivy_signal_parse("RTMIN+99"), -EINVAL);
  cr_assert_eq(bivy_signal_parse(""), -EINVAL);
  cr_assert_eq(bivy_signal_parse("SIG"), -EINVAL);
}
