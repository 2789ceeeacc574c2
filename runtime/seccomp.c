/* STUB until the seccomp issue lands: no filter support yet. */
#include "runtime/seccomp.h"

#include <errno.h>
#include <stddef.h>

int bivy_seccomp_prepare(json_t *seccomp, const char *cache_dir, struct bivy_seccomp **out, bivy_error_t *err) {
  (void)cache_dir;
  *out = NULL;
  if (seccomp == NULL) return 0;
  return bivy_error(err, ENOSYS, "linux.seccomp: not supported yet");
}
int bivy_seccomp_install(struct bivy_seccomp *s, int *notify_fd, bivy_error_t *err) {
  (void)s;
  (void)err;
  *notify_fd = -1;
  return 0;
}
const char *bivy_seccomp_listener_path(const struct bivy_seccomp *s) {
  (void)s;
  return NULL;
}
int bivy_seccomp_send_listener(const struct bivy_seccomp *s, int notify_fd, const char *state_json, pid_t pid,
                               bivy_error_t *err) {
  (void)s, (void)notify_fd, (void)state_json, (void)pid;
  return bivy_error(err, ENOSYS, "seccomp listener");
}
void bivy_seccomp_free(struct bivy_seccomp *s) { (void)s; }
const char *bivy_seccomp_builtin(const char *name) {
  (void)name;
  return NULL;
}
