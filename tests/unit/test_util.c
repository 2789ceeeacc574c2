#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/error.h"
#include "runtime/util.h"

Test(util, parse_size) {
  int64_t v;
  cr_assert_eq(bivy_parse_size("64M", &v), 0);
  cr_assert_eq(v, 64ll << 20);
  cr_assert_eq(bivy_parse_size("1g", &v), 0);
  cr_assert_eq(v, 1ll << 30);
  cr_assert_eq(bivy_parse_size("512kb", &v), 0);
  cr_assert_eq(v, 512ll << 10);
  cr_assert_eq(bivy_parse_size("123", &v), 0);
  cr_assert_eq(v, 123);
  cr_assert_eq(bivy_parse_size("-5", &v), -EINVAL);
  cr_assert_eq(bivy_parse_size("5x", &v), -EINVAL);
  cr_assert_eq(bivy_parse_size("", &v), -EINVAL);
  cr_assert_eq(bivy_parse_size("99999999999999999999", &v), -ERANGE);
  cr_assert_eq(bivy_parse_size("9999999999999t", &v), -ERANGE);
}

Test(util, id_valid) {
  cr_assert(bivy_id_valid("web-1.a_b+c"));
  cr_assert(!bivy_id_valid(""));
  cr_assert(!bivy_id_valid(".."));
  cr_assert(!bivy_id_valid("a/b"));
  cr_assert(!bivy_id_valid("a b"));
}

Test(error, wrap_keeps_code_and_prefixes) {
  _cleanup_error_ bivy_error_t err = NULL;
  int r = bivy_error(&err, ENOENT, "open %s", "/x");
  cr_assert_eq(r, -ENOENT);
  r = bivy_error_wrap(&err, "create %s", "c1");
  cr_assert_eq(r, -ENOENT);
  cr_assert_str_eq(err->msg, "create c1: open /x: No such file or directory");
  bivy_error_release(&err);
  r = bivy_error(&err, 0, "bad value %d", 3);
  cr_assert_eq(r, -EINVAL);
  cr_assert_str_eq(err->msg, "bad value 3");
}

Test(util, atomic_write_and_read) {
  char dir[] = "/tmp/bivy-unit.XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  _cleanup_free_ char *p = NULL, *back = NULL;
  cr_assert_gt(asprintf(&p, "%s/f", dir), 0);
  _cleanup_error_ bivy_error_t err = NULL;
  cr_assert_eq(bivy_write_file_atomic(p, "hello", 5, 0600, &err), 0);
  size_t len = 0;
  cr_assert_eq(bivy_read_file_at(AT_FDCWD, p, &back, &len, &err), 0);
  cr_assert_eq(len, 5);
  cr_assert_str_eq(back, "hello");
  cr_assert_eq(bivy_rm_rf(dir, &err), 0);
  cr_assert_lt(bivy_read_file_at(AT_FDCWD, p, &back, &len, &err), 0);
}

/* bivy_flock_ex counts every lock and times only one held by someone else (a second open
 * file description: flock locks belong to those, so the same process can contend) */
Test(util, flock_ex_counts_contention) {
  char path[] = "/tmp/bivy-flock-XXXXXX";
  _cleanup_close_ int a = mkstemp(path);
  cr_assert_geq(a, 0);
  _cleanup_close_ int b = open(path, O_RDWR | O_CLOEXEC);
  unlink(path);
  cr_assert_geq(b, 0);
  struct bivy_lock_stats s0 = bivy_lock_stats();
  cr_assert_eq(bivy_flock_ex(a), 0);
  struct bivy_lock_stats s1 = bivy_lock_stats();
  cr_assert_eq(s1.taken, s0.taken + 1);
  cr_assert_eq(s1.contended, s0.contended);
  cr_assert_eq(s1.wait_ns, s0.wait_ns);
  /* b waits until a child releases a (the child shares a's description, then closes it) */
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    flock(a, LOCK_UN);
    _exit(0);
  }
  cr_assert_eq(bivy_flock_ex(b), 0);
  struct bivy_lock_stats s2 = bivy_lock_stats();
  cr_assert_eq(s2.taken, s1.taken + 1);
  cr_assert_eq(s2.contended, s1.contended + 1);
  cr_assert_gt(s2.wait_ns, s1.wait_ns);
  int st;
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  cr_assert_eq(bivy_flock_ex(-1), -EBADF);
}
