/* Typed JSON accessors with path-naming errors, shared by the config.json parser. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cleanup.h"
#include "runtime/config-internal.h"

/* Paths longer than this are truncated in messages (fuzzed documents nest deeply). */
#define JP_MAX 512

static void jp_format(const struct jp *p, char *buf, size_t size) {
  const struct jp *chain[64];
  size_t n = 0;
  for (const struct jp *q = p; q && n < 64; q = q->up) chain[n++] = q;
  size_t off = 0;
  buf[0] = '\0';
  for (size_t i = n; i-- > 0 && off < size;) {
    const struct jp *q = chain[i];
    int w;
    if (q->key) w = snprintf(buf + off, size - off, "%s%s", off ? "." : "", q->key);
    else w = snprintf(buf + off, size - off, "[%zu]", q->idx);
    if (w < 0) break;
    off += (size_t)w;
  }
}

int cfg_fail(bivy_error_t *err, const struct jp *p, int errnum, const char *fmt, ...) {
  char path[JP_MAX];
  _cleanup_free_ char *reason = NULL;
  jp_format(p, path, sizeof path);
  va_list ap;
  va_start(ap, fmt);
  int n = vasprintf(&reason, fmt, ap);
  va_end(ap);
  if (n < 0) reason = NULL;
  return bivy_error(err, errnum, "%s: %s", path, reason ? reason : "invalid");
}

int cfg_object(json_t *v, const struct jp *p, bivy_error_t *err) {
  if (!json_is_object(v)) return cfg_fail(err, p, 0, "expected an object");
  return 0;
}

int cfg_array(json_t *v, const struct jp *p, bivy_error_t *err) {
  if (!json_is_array(v)) return cfg_fail(err, p, 0, "expected an array");
  return 0;
}

int cfg_str(json_t *v, const struct jp *p, bool required, char **out, bivy_error_t *err) {
  *out = NULL;
  if (v == NULL) return required ? cfg_fail(err, p, 0, "missing (required)") : 0;
  if (!json_is_string(v)) return cfg_fail(err, p, 0, "expected a string");
  /* embedded NUL bytes would silently truncate paths and names */
  size_t len = json_string_length(v);
  const char *s = json_string_value(v);
  if (memchr(s, '\0', len)) return cfg_fail(err, p, 0, "contains a NUL byte");
  *out = strndup(s, len);
  if (*out == NULL) return cfg_fail(err, p, ENOMEM, "copy");
  return 0;
}

int cfg_str_ref(json_t *v, const struct jp *p, const char **out, bivy_error_t *err) {
  if (v == NULL) return cfg_fail(err, p, 0, "missing (required)");
  if (!json_is_string(v)) return cfg_fail(err, p, 0, "expected a string");
  *out = json_string_value(v);
  return 0;
}

int cfg_abs_path(json_t *v, const struct jp *p, bool required, char **out, bivy_error_t *err) {
  int r = cfg_str(v, p, required, out, err);
  if (r < 0 || *out == NULL) return r;
  if ((*out)[0] != '/') {
    int e = cfg_fail(err, p, 0, "\"%s\" is not an absolute path", *out);
    free(*out);
    *out = NULL;
    return e;
  }
  return 0;
}

int cfg_bool(json_t *v, const struct jp *p, bool *out, bivy_error_t *err) {
  if (v == NULL) return 0;
  if (!json_is_boolean(v)) return cfg_fail(err, p, 0, "expected true or false");
  *out = json_is_true(v);
  return 0;
}

/* A number as a long double when it is integral (integers, or reals without a fraction). */
static bool integral(json_t *v, long double *out) {
  if (json_is_integer(v)) {
    *out = (long double)json_integer_value(v);
    return true;
  }
  if (json_is_real(v)) {
    double d = json_real_value(v);
    if (!isfinite(d) || d != floor(d)) return false;
    *out = d;
    return true;
  }
  return false;
}

int cfg_int(json_t *v, const struct jp *p, int64_t min, int64_t max, int64_t *out, bivy_error_t *err) {
  if (json_is_integer(v)) {
    json_int_t x = json_integer_value(v);
    if (x < min || x > max)
      return cfg_fail(err, p, 0, "%lld out of range [%" PRId64 ", %" PRId64 "]", (long long)x, min, max);
    *out = x;
    return 0;
  }
  long double d;
  if (!integral(v, &d)) return cfg_fail(err, p, 0, "expected an integer");
  if (d < (long double)min || d > (long double)max)
    return cfg_fail(err, p, 0, "%.0Lf out of range [%" PRId64 ", %" PRId64 "]", d, min, max);
  *out = (int64_t)d;
  return 0;
}

int cfg_u64(json_t *v, const struct jp *p, uint64_t *out, bivy_error_t *err) {
  if (json_is_integer(v)) {
    json_int_t x = json_integer_value(v);
    if (x < 0) return cfg_fail(err, p, 0, "%lld is negative", (long long)x);
    *out = (uint64_t)x;
    return 0;
  }
  long double d;
  if (!integral(v, &d)) return cfg_fail(err, p, 0, "expected an unsigned integer");
  if (d < 0) return cfg_fail(err, p, 0, "%.0Lf is negative", d);
  /* 18446744073709551615 (RLIM_INFINITY) only survives as a double rounded up to 2^64 */
  if (d >= 18446744073709551615.0L) *out = UINT64_MAX;
  else *out = (uint64_t)d;
  return 0;
}

void cfg_strv_free(char **v) {
  if (v == NULL) return;
  for (char **q = v; *q; q++) free(*q);
  free(v);
}

int cfg_strv(json_t *v, const struct jp *p, bool required, bool nonempty, char ***out, bivy_error_t *err) {
  *out = NULL;
  if (v == NULL) return required ? cfg_fail(err, p, 0, "missing (required)") : 0;
  if (!json_is_array(v)) return cfg_fail(err, p, 0, "expected an array of strings");
  size_t n = json_array_size(v);
  if (nonempty && n == 0) return cfg_fail(err, p, 0, "must not be empty");
  _cleanup_strv_ char **vec = calloc(n + 1, sizeof(char *));
  if (vec == NULL) return cfg_fail(err, p, ENOMEM, "allocate");
  for (size_t i = 0; i < n; i++) {
    json_t *e = json_array_get(v, i);
    if (!json_is_string(e)) return cfg_fail(err, p, 0, "expected an array of strings");
    int r = cfg_str(e, JP_IDX(p, i), true, &vec[i], err);
    if (r < 0) return r;
  }
  *out = steal_pointer(&vec);
  return 0;
}
