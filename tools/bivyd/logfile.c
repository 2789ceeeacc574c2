/* bivyd layer 3 (supervision): instance log files: capture, size-capped rotation, tail.
 * The init's stdout and stderr are one O_APPEND file, STATE/logs/NAME.log, written by the
 * instance directly (no pipe through bivyd: a service keeps logging, and never gets SIGPIPE
 * or blocks, while bivyd is down or restarting). bivyd caps its size by copy-truncate into
 * NAME.log.1 (one old file kept) and serves --tail from both files; the control API follows
 * the current one for `logs -f`. */
#include "tools/bivyd/logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/util.h"
#include "tools/bivyd/conf.h"
#include "tools/bivyd/daemon-log.h"
#include "tools/bivyd/instance.h"
#include "tools/bivyd/loop.h"

int logs_open(struct bivyd_inst *in, bivy_error_t *err) {
  if (in->log_fd >= 0) return 0;
  _cleanup_free_ char *p = inst_path("logs", in->name, ".log");
  if (p == NULL) return bivy_error(err, ENOMEM, "log path");
  in->log_fd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (in->log_fd < 0) return bivy_error_errno(err, "open log %s", p);
  return 0;
}

static void rotate(struct bivyd_inst *in) {
  _cleanup_free_ char *cur = inst_path("logs", in->name, ".log");
  _cleanup_free_ char *old = inst_path("logs", in->name, ".log.1");
  if (cur == NULL || old == NULL) return;
  _cleanup_close_ int src = open(cur, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (src < 0) return;
  struct stat st;
  if (fstat(src, &st) < 0 || (uint64_t)st.st_size <= D.log_max) return;
  _cleanup_free_ char *tmp = NULL;
  if (asprintf(&tmp, "%s.tmp", old) < 0) return;
  _cleanup_close_ int dst = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (dst < 0) return;
  off_t off = 0;
  while (off < st.st_size) {
    ssize_t k = sendfile(dst, src, &off, (size_t)(st.st_size - off));
    if (k <= 0) break;
  }
  rename(tmp, old);
  /* writers use O_APPEND: after the truncation they go on at the new end */
  if (ftruncate(src, 0) < 0) bivyd_log("%s: truncate log: %s", in->name, strerror(errno));
}

#define ROTATE_CHECK_NS (250ull * 1000000)
static struct loop_timer t_rotate;

static void rotate_all(struct loop_timer *t, uint64_t now) {
  loop_timer_set(t, now + ROTATE_CHECK_NS);
  for (struct bivyd_inst *in = T.insts; in; in = in->next) {
    if (in->removed) continue;
    struct stat st;
    _cleanup_free_ char *p = inst_path("logs", in->name, ".log");
    if (p && stat(p, &st) == 0 && (uint64_t)st.st_size > D.log_max) rotate(in);
  }
}

json_t *json_text(const char *buf, size_t len) {
  json_t *s = json_stringn(buf, len);
  if (s) return s;
  /* not UTF-8: keep ASCII, replace the rest */
  _cleanup_free_ char *copy = malloc(len + 1);
  if (copy == NULL) return json_string("");
  for (size_t i = 0; i < len; i++) copy[i] = (unsigned char)buf[i] < 0x80 && buf[i] ? buf[i] : '?';
  copy[len] = '\0';
  return json_stringn(copy, len);
}

static int read_file(const char *path, char **out, size_t *len) {
  _cleanup_error_ bivy_error_t err = NULL;
  int r = bivy_read_file_at(AT_FDCWD, path, out, len, &err);
  if (r == -ENOENT) {
    *out = strdup("");
    *len = 0;
    return *out ? 0 : -ENOMEM;
  }
  return r;
}

int logs_tail(const char *name, long lines, char **out, size_t *len, bivy_error_t *err) {
  _cleanup_free_ char *cur = inst_path("logs", name, ".log");
  _cleanup_free_ char *old = inst_path("logs", name, ".log.1");
  _cleanup_free_ char *a = NULL, *b = NULL;
  size_t la = 0, lb = 0;
  if (cur == NULL || old == NULL) return bivy_error(err, ENOMEM, "logs");
  if (read_file(old, &a, &la) < 0 || read_file(cur, &b, &lb) < 0) return bivy_error_errno(err, "read logs of %s", name);
  char *all = malloc(la + lb + 1);
  if (all == NULL) return bivy_error(err, ENOMEM, "logs");
  memcpy(all, a, la);
  memcpy(all + la, b, lb);
  size_t n = la + lb;
  all[n] = '\0';
  size_t start = 0;
  if (lines >= 0) {
    long seen = 0;
    size_t i = n;
    if (i > 0 && all[i - 1] == '\n') i--;
    while (i > 0) {
      if (all[i - 1] == '\n' && ++seen == lines) break;
      i--;
    }
    start = lines == 0 ? n : i;
  }
  memmove(all, all + start, n - start + 1);
  *out = all;
  *len = n - start;
  return 0;
}

void logfile_init(void) {
  t_rotate.fn = rotate_all;
  loop_timer_set(&t_rotate, bivy_now_ns() + ROTATE_CHECK_NS);
}
