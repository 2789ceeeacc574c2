/* Scope-bound resource release, systemd style: a variable declared with one of these
 * attributes is freed/closed when it goes out of scope, so every early return is clean.
 * Hand ownership on with steal_pointer()/steal_fd(). */
#ifndef BIVY_CLEANUP_H
#define BIVY_CLEANUP_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "runtime/error.h"

static inline void bivy_freep(void *p) { free(*(void **)p); }
static inline void bivy_closep(int *fd) {
  if (*fd >= 0) {
    int saved = errno;
    close(*fd);
    errno = saved;
  }
  *fd = -1;
}
static inline void bivy_fclosep(FILE **f) {
  if (*f) fclose(*f);
}
static inline void bivy_closedirp(DIR **d) {
  if (*d) closedir(*d);
}
static inline void bivy_errorp(bivy_error_t *e) { bivy_error_release(e); }
/* NULL-terminated array of strings */
static inline void bivy_strvfreep(char ***v) {
  if (*v) {
    for (char **p = *v; *p; p++) free(*p);
    free(*v);
  }
}

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(bivy_freep)
#define _cleanup_close_ _cleanup_(bivy_closep)
#define _cleanup_fclose_ _cleanup_(bivy_fclosep)
#define _cleanup_closedir_ _cleanup_(bivy_closedirp)
#define _cleanup_error_ _cleanup_(bivy_errorp)
#define _cleanup_strv_ _cleanup_(bivy_strvfreep)

/* jansson */
#include <jansson.h>
static inline void bivy_json_decrefp(json_t **j) {
  if (*j) json_decref(*j);
}
#define _cleanup_json_ _cleanup_(bivy_json_decrefp)

static inline void *bivy_steal_ptr(void *pp) {
  void **p = pp;
  void *v = *p;
  *p = NULL;
  return v;
}
#define steal_pointer(pp) bivy_steal_ptr(pp)
static inline int steal_fd(int *fd) {
  int v = *fd;
  *fd = -1;
  return v;
}

#endif
