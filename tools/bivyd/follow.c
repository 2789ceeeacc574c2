/* bivyd layer 5 (control API): streams to clients: new events for `monitor --follow`
 * (an event-stream subscriber) and new log bytes for `logs -f` (a 250 ms timer). */
#include "tools/bivyd/follow.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/util.h"
#include "tools/bivyd/clients.h"
#include "tools/bivyd/event-stream.h"
#include "tools/bivyd/instance.h"
#include "tools/bivyd/logfile.h"
#include "tools/bivyd/loop.h"

#define FOLLOW_NS (250ull * 1000000)
static struct loop_timer t_logs;

static void send_event(json_t *ev) {
  for (struct bivyd_client *c = clients; c; c = c->next)
    if (c->follow_events && !c->dead) bivyd_client_send(c, json_pack("{s:O}", "event", ev));
}

static void follow_logs(struct loop_timer *t, uint64_t now) {
  loop_timer_set(t, now + FOLLOW_NS);
  for (struct bivyd_client *c = clients; c; c = c->next) {
    if (c->dead || c->follow_logs == NULL) continue;
    _cleanup_free_ char *p = inst_path("logs", c->follow_logs, ".log");
    _cleanup_close_ int fd = p ? open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
    if (fd < 0) continue;
    struct stat st;
    if (fstat(fd, &st) < 0) continue;
    if ((uint64_t)st.st_ino != c->log_ino || st.st_size < c->log_off) { /* rotated */
      c->log_ino = st.st_ino;
      c->log_off = 0;
    }
    while (c->log_off < st.st_size && !c->dead) {
      char buf[65536];
      ssize_t k = pread(fd, buf, sizeof buf, c->log_off);
      if (k <= 0) break;
      c->log_off += k;
      bivyd_client_send(c, json_pack("{s:o}", "data", json_text(buf, (size_t)k)));
    }
  }
}

void follow_init(void) {
  events_subscribe(send_event);
  t_logs.fn = follow_logs;
  loop_timer_set(&t_logs, bivy_now_ns() + FOLLOW_NS);
}
