#include "runtime/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bivy_verror(bivy_error_t *err, int errnum, const char *fmt, va_list ap) {
  if (errnum < 0) errnum = -errnum;
  if (err == NULL) return errnum ? -errnum : -EINVAL;
  bivy_error_release(err);
  char *what = NULL;
  if (vasprintf(&what, fmt, ap) < 0) what = NULL;
  struct bivy_error_s *e = calloc(1, sizeof(*e));
  if (e == NULL) {
    free(what);
    return errnum ? -errnum : -EINVAL;
  }
  e->status = errnum;
  if (what != NULL && errnum != 0) {
    if (asprintf(&e->msg, "%s: %s", what, strerror(errnum)) < 0) e->msg = NULL;
    free(what);
  } else {
    e->msg = what;
  }
  *err = e;
  return errnum ? -errnum : -EINVAL;
}

int bivy_error(bivy_error_t *err, int errnum, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int r = bivy_verror(err, errnum, fmt, ap);
  va_end(ap);
  return r;
}

int bivy_error_code(const bivy_error_t *err) {
  if (err == NULL || *err == NULL || (*err)->status == 0) return -EINVAL;
  return -(*err)->status;
}

int bivy_error_wrap(bivy_error_t *err, const char *fmt, ...) {
  if (err == NULL || *err == NULL) return -EINVAL;
  char *prefix = NULL, *msg = NULL;
  va_list ap;
  va_start(ap, fmt);
  int n = vasprintf(&prefix, fmt, ap);
  va_end(ap);
  if (n >= 0 && asprintf(&msg, "%s: %s", prefix, (*err)->msg ? (*err)->msg : "unknown error") >= 0) {
    free((*err)->msg);
    (*err)->msg = msg;
  }
  if (n >= 0) free(prefix);
  return bivy_error_code(err);
}

void bivy_error_release(bivy_error_t *err) {
  if (err == NULL || *err == NULL) return;
  free((*err)->msg);
  free(*err);
  *err = NULL;
}

int bivy_error_plain(bivy_error_t *err, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  bivy_verror(err, 0, fmt, ap);
  va_end(ap);
  if (err && *err) (*err)->status = code;
  return -code;
}
