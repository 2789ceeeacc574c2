/* Private helpers of the config.json parser (runtime/config*.c). */
#ifndef BIVY_CONFIG_INTERNAL_H
#define BIVY_CONFIG_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "runtime/config.h"
#include "runtime/error.h"

/* A JSON path kept as a chain of stack frames: building it costs nothing on the success
 * path; it is only formatted ("linux.namespaces[2].type") when an error is reported. */
struct jp {
  const struct jp *up;
  const char *key; /* ".key" (or "key" at the root); NULL: "[idx]" */
  size_t idx;
};
#define JP_KEY(parent, k) (&(const struct jp){.up = (parent), .key = (k)})
#define JP_IDX(parent, i) (&(const struct jp){.up = (parent), .key = NULL, .idx = (i)})

/* json_object_get, with JSON null read as absent (Go encoders emit null for nil values) */
static inline json_t *cfg_get(const json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  return json_is_null(v) ? NULL : v;
}

/* Fill err with "<path>: <reason>" (errnum 0 = EINVAL, no strerror). */
int cfg_fail(bivy_error_t *err, const struct jp *p, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Typed accessors: absent (NULL) values are fine unless `required`; a present value of the
 * wrong type fails naming the path. Strings are copied (the struct owns its memory). */
int cfg_str(json_t *v, const struct jp *p, bool required, char **out, bivy_error_t *err);
/* A required string, borrowed from the document (no copy): enum-like values such as "type". */
int cfg_str_ref(json_t *v, const struct jp *p, const char **out, bivy_error_t *err);
int cfg_abs_path(json_t *v, const struct jp *p, bool required, char **out, bivy_error_t *err);
int cfg_bool(json_t *v, const struct jp *p, bool *out, bivy_error_t *err);
/* integers in [min, max]; jansson reals with an integral value are accepted (documents with
 * integers beyond int64 are decoded as reals, see bivy_config_parse) */
int cfg_int(json_t *v, const struct jp *p, int64_t min, int64_t max, int64_t *out, bivy_error_t *err);
int cfg_u64(json_t *v, const struct jp *p, uint64_t *out, bivy_error_t *err);
/* array of strings -> NULL-terminated vector (NULL when absent and not required) */
int cfg_strv(json_t *v, const struct jp *p, bool required, bool nonempty, char ***out, bivy_error_t *err);
int cfg_object(json_t *v, const struct jp *p, bivy_error_t *err);
int cfg_array(json_t *v, const struct jp *p, bivy_error_t *err);

void cfg_strv_free(char **v);

/* process (runtime/config-process.c) */
int cfg_parse_process(json_t *j, const struct jp *p, struct bivy_process *out, bivy_error_t *err);

/* linux (runtime/config-linux.c) */
int cfg_parse_linux(struct bivy_config *c, json_t *j, bivy_error_t *err);

/* mount options -> flags (runtime/config-mounts.c) */
int cfg_parse_mount(json_t *j, const struct jp *p, struct bivy_mount *m, bivy_error_t *err);
void cfg_mount_clear(struct bivy_mount *m);

#endif
