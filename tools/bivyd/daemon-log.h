/* bivyd layer 1 (loop): the daemon's log lines on stderr and its clocks. */
#ifndef BIVYD_DAEMON_LOG_H
#define BIVYD_DAEMON_LOG_H

#include <stddef.h>
#include <stdint.h>

void bivyd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void bivyd_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* CLOCK_MONOTONIC milliseconds */
uint64_t bivyd_now_ms(void);
/* the wall clock as RFC 3339 with microseconds, UTC */
void bivyd_rfc3339(char *buf, size_t len);

#endif
