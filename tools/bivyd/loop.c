/* bivyd layer 1 (loop): the epoll loop, a timer heap behind one timerfd, signals through a
 * self-pipe, end-of-iteration hooks (see loop.h). */
#include "tools/bivyd/loop.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "runtime/util.h"
#include "tools/bivyd/daemon-log.h"

static int epfd = -1, timer_fd = -1, sig_pipe[2] = {-1, -1};
static bool quit;
static struct loop_watch w_timer, w_sig;
static struct loop_timer **heap;
static size_t heap_n, heap_cap;
static void (*idle[8])(void);
static size_t n_idle;

int loop_watch_add(int fd, uint32_t events, struct loop_watch *w) {
  struct epoll_event ev = {.events = events, .data.ptr = w};
  return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int loop_watch_mod(int fd, uint32_t events, struct loop_watch *w) {
  struct epoll_event ev = {.events = events, .data.ptr = w};
  return epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

void loop_watch_del(int fd) {
  if (fd >= 0) epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
}

void loop_watch_close(int *fd) {
  if (*fd < 0) return;
  loop_watch_del(*fd);
  close(*fd);
  *fd = -1;
}

/* ---- timers: a binary min-heap on due ---- */

static void heap_put(size_t i, struct loop_timer *t) {
  heap[i] = t;
  t->slot = i;
}

static void sift_up(size_t i) {
  struct loop_timer *t = heap[i];
  while (i > 0 && heap[(i - 1) / 2]->due > t->due) {
    heap_put(i, heap[(i - 1) / 2]);
    i = (i - 1) / 2;
  }
  heap_put(i, t);
}

static void sift_down(size_t i) {
  struct loop_timer *t = heap[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= heap_n) break;
    if (c + 1 < heap_n && heap[c + 1]->due < heap[c]->due) c++;
    if (heap[c]->due >= t->due) break;
    heap_put(i, heap[c]);
    i = c;
  }
  heap_put(i, t);
}

void loop_timer_stop(struct loop_timer *t) {
  if (t->due == 0) return;
  size_t i = t->slot;
  t->due = 0;
  heap_n--;
  if (i == heap_n) return;
  heap_put(i, heap[heap_n]);
  sift_down(i);
  sift_up(heap[i]->slot);
}

void loop_timer_set(struct loop_timer *t, uint64_t due) {
  loop_timer_stop(t);
  if (due == 0) return;
  if (heap_n == heap_cap) {
    size_t cap = heap_cap ? heap_cap * 2 : 64;
    struct loop_timer **p = realloc(heap, cap * sizeof *p);
    if (p == NULL) { /* cannot happen in practice; a lost timer would stall an instance */
      bivyd_log("timer heap: out of memory");
      abort();
    }
    heap = p;
    heap_cap = cap;
  }
  t->due = due;
  heap_put(heap_n++, t);
  sift_up(t->slot);
}

static void arm_timerfd(void) {
  struct itimerspec its = {0};
  if (heap_n) {
    uint64_t due = heap[0]->due;
    its.it_value.tv_sec = (time_t)(due / 1000000000ull);
    its.it_value.tv_nsec = (long)(due % 1000000000ull);
  }
  timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void run_timers(void) {
  uint64_t now = bivy_now_ns();
  while (heap_n && heap[0]->due <= now) {
    struct loop_timer *t = heap[0];
    loop_timer_stop(t);
    t->fn(t, now);
  }
}

/* ---- signals ---- */

static void on_signal(int sig) {
  char c = (char)sig;
  int saved = errno;
  ssize_t w = write(sig_pipe[1], &c, 1);
  (void)w;
  errno = saved;
}

static void sig_ready(struct loop_watch *w, uint32_t events) {
  (void)w, (void)events;
  char buf[16];
  ssize_t k = read(sig_pipe[0], buf, sizeof buf);
  for (ssize_t j = 0; j < k; j++)
    if (buf[j] != SIGHUP) quit = true;
}

static void timer_ready(struct loop_watch *w, uint32_t events) {
  (void)w, (void)events;
  uint64_t x;
  ssize_t k = read(timer_fd, &x, sizeof x);
  (void)k;
}

int loop_init(bivy_error_t *err) {
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) return bivy_error_errno(err, "epoll_create1");
  timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (timer_fd < 0) return bivy_error_errno(err, "timerfd_create");
  w_timer = (struct loop_watch){timer_ready, NULL};
  loop_watch_add(timer_fd, EPOLLIN, &w_timer);
  if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0) return bivy_error_errno(err, "pipe2");
  w_sig = (struct loop_watch){sig_ready, NULL};
  loop_watch_add(sig_pipe[0], EPOLLIN, &w_sig);
  /* a handler, not a blocked mask + signalfd: instances inherit the signal mask of the
   * process that clones them, handlers are reset by execve */
  struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  return 0;
}

int loop_idle_add(void (*fn)(void)) {
  if (n_idle == sizeof idle / sizeof idle[0]) return -ENOSPC;
  idle[n_idle++] = fn;
  return 0;
}

void loop_quit(void) { quit = true; }

void loop_run(void) {
  struct epoll_event evs[64];
  while (!quit) {
    arm_timerfd();
    int n = epoll_wait(epfd, evs, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      bivyd_log("epoll_wait: %s", strerror(errno));
      break;
    }
    for (int i = 0; i < n; i++) {
      struct loop_watch *w = evs[i].data.ptr;
      w->fn(w, evs[i].events);
    }
    run_timers();
    for (size_t i = 0; i < n_idle; i++) idle[i]();
  }
}
