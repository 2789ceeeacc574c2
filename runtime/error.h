/* bivy error values: every fallible function returns 0 (or a non-negative value) on
 * success and -errno on failure, and fills a bivy_error_t with a message that carries
 * context up the stack ("create container: cgroup memory.max: Device or resource busy").
 * The idea comes from crun's libcrun_error_t. */
#ifndef BIVY_ERROR_H
#define BIVY_ERROR_H

#include <stdarg.h>

struct bivy_error_s {
  int status;  /* positive errno, or 0 when the cause is not a system error */
  char *msg;   /* "<what failed>: <why>" */
};
typedef struct bivy_error_s *bivy_error_t;

/* Set *err to "fmt...: strerror(errnum)" (or just "fmt..." when errnum == 0) and
 * return -errnum (-EINVAL when errnum == 0). Any previous error in *err is released. */
int bivy_error(bivy_error_t *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int bivy_verror(bivy_error_t *err, int errnum, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Prefix the message in *err with "fmt...: " and return -status (the same code the
 * callee returned). Use it to add context while propagating: return bivy_error_wrap(err, "mount %s", dst); */
int bivy_error_wrap(bivy_error_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Set *err to exactly "fmt..." with status code (a message that already says why, e.g. one
 * relayed from another process) and return -code. */
int bivy_error_plain(bivy_error_t *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Code that err would be returned as: -status, or -EINVAL when status is 0. */
int bivy_error_code(const bivy_error_t *err);

void bivy_error_release(bivy_error_t *err);

/* Convenience used at call sites that only have errno. */
#define bivy_error_errno(err, ...) bivy_error((err), errno, __VA_ARGS__)

#endif
