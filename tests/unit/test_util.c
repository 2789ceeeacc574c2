#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>

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
