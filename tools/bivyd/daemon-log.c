/* bivyd layer 1 (loop): log lines ("bivyd TIME [debug: ]TEXT") and clocks. */
#include "tools/bivyd/daemon-log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "runtime/util.h"

void bivyd_rfc3339(char *buf, size_t len) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, len - n, ".%06ldZ", ts.tv_nsec / 1000);
}

/* one write(2) per line (stderr is unbuffered): lines from bivyd and its instances' runtime
 * calls never interleave mid-line in a shared log */
static void vlog(const char *level, const char *fmt, va_list ap) {
  char ts[40];
  bivyd_rfc3339(ts, sizeof ts);
  char *msg = NULL;
  if (vasprintf(&msg, fmt, ap) < 0) msg = NULL;
  fprintf(stderr, "bivyd %s %s%s\n", ts, level, msg ? msg : fmt);
  free(msg);
}

void bivyd_log(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog("", fmt, ap);
  va_end(ap);
}

void bivyd_debug(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog("debug: ", fmt, ap);
  va_end(ap);
}

uint64_t bivyd_now_ms(void) { return bivy_now_ns() / 1000000; }
