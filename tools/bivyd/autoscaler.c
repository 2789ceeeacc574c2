/* bivyd layer 3 (supervision): the autoscaler. Grows an instance's memory and CPU limits from measured pressure and
 * shrinks them back when it is quiet, within the bounds of spec.autoscale and the host
 * budget. Decisions are the pure functions of policy/scaling-policy.c; this file registers the
 * signals with the loop and applies changes through inst_resize (live-resize.c).
 *
 * Signals, event-driven:
 *   memory  a v1 usage-threshold eventfd at 80 % of the limit, or on v2 memory.high at 80 %
 *           (the kernel slows allocations there and reports "high" in memory.events);
 *           plus a PSI trigger on memory.pressure
 *   cpu     a PSI trigger on cpu.pressure (CFS throttling shows as cpu stall); cpu.stat
 *           throttling once a second when the kernel offers no PSI
 * A 1 s tick per autoscaled instance evaluates the quiet window for shrinking (and catches
 * a crossing that happened while a limit was being changed). */
#include "tools/bivyd/autoscaler.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/state.h"
#include "runtime/util.h"
#include "tools/bivyd/budget.h"
#include "tools/bivyd/conf.h"
#include "tools/bivyd/daemon-log.h"
#include "tools/bivyd/event-stream.h"
#include "tools/bivyd/instance.h"
#include "tools/bivyd/live-resize.h"
#include "tools/bivyd/loop.h"
#include "tools/bivyd/policy/scaling-policy.h"

#define TICK_NS 1000000000ull
#define MEM_PSI_STALL_US 50000  /* 5 % of the window stalled on memory */
#define CPU_PSI_STALL_US 100000 /* 10 % of the window throttled or waiting for CPU */

/* per instance, while armed (running with spec.autoscale) */
struct scaling_state {
  struct bivyd_inst *in;
  bool on;
  struct bivy_as_policy p;
  struct bivy_cgroup *cg;     /* open while armed */
  int mem_fd, psi_mem_fd, psi_cpu_fd; /* -1 = none */
  struct loop_watch w_mem, w_psi_mem, w_psi_cpu;
  struct loop_timer t_tick;   /* next evaluation (shrink window, fallbacks) */
  uint64_t calm_since_ns;     /* last grow, shrink or pressure signal */
  uint64_t win_ns, win_cpu_usec; /* start of the CPU averaging window */
  uint64_t periods, throttled;   /* last cpu.stat sample (no-PSI fallback) */
  uint64_t refused_mem;       /* last refused memory target (one event per target) */
  double refused_cpu;
};

static uint64_t spec_mem(struct bivyd_inst *in) {
  json_t *m = json_object_get(json_object_get(in->spec, "limits"), "memory");
  return json_is_integer(m) && json_integer_value(m) > 0 ? (uint64_t)json_integer_value(m) : UINT64_MAX;
}

static double spec_cpus(struct bivyd_inst *in) {
  json_t *c = json_object_get(json_object_get(in->spec, "limits"), "cpus");
  return json_is_number(c) ? json_number_value(c) : 0;
}

/* Apply one limit change; an event with the reason, before and after, and how long it took
 * from the signal (`reaction_ms`). */
static bool apply(struct bivyd_inst *in, const char *resource, json_t *value, json_t *before, const char *reason,
                  uint64_t signal_ns) {
  _cleanup_json_ json_t *upd = json_object();
  json_object_set(upd, resource, value);
  _cleanup_error_ bivy_error_t err = NULL;
  bool live = false;
  if (inst_resize(in, upd, &live, &err) < 0) {
    M.autoscale_refused_total++;
    bivyd_event(in->name, "autoscale-refused", json_pack("{s:s, s:s, s:O, s:O, s:s}", "resource", resource, "reason", reason,
                                                   "limit", before, "wanted", value, "error", err->msg));
    return false;
  }
  M.autoscale_total++;
  double ms = (double)(bivy_now_ns() - signal_ns) / 1e6;
  bivyd_event(in->name, "autoscale", json_pack("{s:s, s:s, s:O, s:O, s:f, s:b}", "resource", resource, "reason", reason, "before",
                                         before, "after", value, "reaction_ms", ms, "live", live));
  return true;
}

static void refuse_budget(struct bivyd_inst *in, const char *resource, json_t *limit, json_t *wanted, json_t *budget) {
  M.autoscale_refused_total++;
  bivyd_event(in->name, "autoscale-refused", json_pack("{s:s, s:s, s:o, s:o, s:o}", "resource", resource, "reason", "host budget",
                                                 "limit", limit, "wanted", wanted, "budget", budget));
}

static void arm_mem_watch(struct bivyd_inst *in) {
  struct scaling_state *a = in->as;
  loop_watch_close(&a->mem_fd);
  uint64_t limit = spec_mem(in);
  if (!a->p.mem || a->cg == NULL || limit == UINT64_MAX) return;
  _cleanup_error_ bivy_error_t err = NULL;
  /* no early-warning line while the host budget blocks a grow (as at max): on v2 memory.high
   * would only slow the instance to a crawl; the limit itself is the honest outcome, and the
   * 1 s tick grows it as soon as the budget has room again */
  uint64_t line = a->refused_mem ? UINT64_MAX : bivy_as_mem_warn(limit, &a->p);
  int fd = bivy_cgroup_memory_watch(a->cg, line, &err);
  if (fd < 0) {
    if (err) bivyd_log("%s: autoscale: %s", in->name, err->msg);
    return;
  }
  a->mem_fd = fd;
  loop_watch_add(fd, EPOLLIN, &a->w_mem);
}

/* Grow memory while usage is above the line (a big allocation may need several steps).
 * known: a usage reading the caller already made (NULL: read it), for the first step. */
static void mem_check(struct bivyd_inst *in, bool pressure, const char *reason, uint64_t signal_ns,
                      const struct bivy_cgroup_usage *known) {
  struct scaling_state *a = in->as;
  bool changed = false, was_blocked = a->refused_mem != 0;
  for (int step = 0; step < 8; step++) {
    struct bivy_cgroup_usage u;
    _cleanup_error_ bivy_error_t err = NULL;
    if (step == 0 && known) u = *known;
    else if (bivy_cgroup_usage(a->cg, &u, &err) < 0) break;
    uint64_t limit = spec_mem(in);
    uint64_t want = bivy_as_mem_grow(limit, u.mem_usage, pressure, &a->p);
    if (want == 0) break;
    if (D.budget_mem) {
      double others = budget_others_sum(in, "memory");
      uint64_t avail = others >= (double)D.budget_mem ? 0 : D.budget_mem - (uint64_t)others;
      uint64_t fit = bivy_as_budget_clip(limit, want, avail);
      if (fit == 0) {
        if (a->refused_mem != want) refuse_budget(in, "memory", json_integer((json_int_t)limit), json_integer((json_int_t)want), json_integer((json_int_t)D.budget_mem));
        a->refused_mem = want;
        break;
      }
      want = fit;
    }
    _cleanup_json_ json_t *before = json_integer((json_int_t)limit), *after = json_integer((json_int_t)want);
    if (!apply(in, "memory", after, before, reason, signal_ns)) break;
    a->refused_mem = 0;
    changed = true;
    a->calm_since_ns = bivy_now_ns();
  }
  bool blocked = a->refused_mem != 0;
  if (changed || blocked != was_blocked || (a->mem_fd < 0 && !blocked)) arm_mem_watch(in);
}

static void cpu_grow(struct bivyd_inst *in, const char *reason, uint64_t signal_ns) {
  struct scaling_state *a = in->as;
  double cur = spec_cpus(in);
  if (cur <= 0) return;
  double want = bivy_as_cpu_grow(cur, &a->p);
  if (want == 0) return;
  if (D.budget_cpus > 0) {
    double avail = D.budget_cpus - budget_others_sum(in, "cpus");
    if (want > avail + 1e-9) {
      want = floor(avail * 100 + 1e-9) / 100;
      if (want <= cur) {
        if (a->refused_cpu != want) refuse_budget(in, "cpus", json_real(cur), json_real(bivy_as_cpu_grow(cur, &a->p)), json_real(D.budget_cpus));
        a->refused_cpu = want;
        return;
      }
    }
  }
  _cleanup_json_ json_t *before = json_real(cur), *after = json_real(want);
  if (apply(in, "cpus", after, before, reason, signal_ns)) {
    a->refused_cpu = 0;
    a->calm_since_ns = bivy_now_ns();
  }
}

static struct scaling_state *ready(struct loop_watch *w) {
  struct scaling_state *a = w->data;
  return a->on && !a->in->removed && a->in->state == S_RUNNING ? a : NULL;
}

static void mem_line_crossed(struct loop_watch *w, uint32_t events) {
  (void)events;
  struct scaling_state *a = ready(w);
  if (a == NULL) return;
  bivy_cgroup_oom_drain(a->mem_fd);
  mem_check(a->in, false, "memory usage crossed 80% of the limit", bivy_now_ns(), NULL);
}

static void mem_pressure(struct loop_watch *w, uint32_t events) {
  (void)events;
  struct scaling_state *a = ready(w);
  if (a == NULL) return;
  uint64_t now = bivy_now_ns();
  a->calm_since_ns = now;
  mem_check(a->in, true, "memory pressure (PSI)", now, NULL);
}

static void cpu_pressure(struct loop_watch *w, uint32_t events) {
  (void)events;
  struct scaling_state *a = ready(w);
  if (a == NULL) return;
  uint64_t now = bivy_now_ns();
  a->calm_since_ns = now;
  cpu_grow(a->in, "cpu pressure (PSI): throttled or waiting for CPU", now);
}

static void shrink(struct bivyd_inst *in, const struct bivy_cgroup_usage *u, uint64_t now) {
  struct scaling_state *a = in->as;
  uint64_t limit = spec_mem(in);
  bool done = false;
  if (a->p.mem && limit != UINT64_MAX) {
    uint64_t t = bivy_as_mem_shrink(limit, u->mem_working_set, &a->p);
    if (t) {
      _cleanup_json_ json_t *before = json_integer((json_int_t)limit), *after = json_integer((json_int_t)t);
      if (apply(in, "memory", after, before, "quiet window: working set plus 25% headroom", now)) {
        done = true;
        arm_mem_watch(in);
      }
    }
  }
  double cur = spec_cpus(in);
  if (a->p.cpu && cur > 0 && now > a->win_ns) {
    double used = (double)(u->cpu_usage_usec - a->win_cpu_usec) * 1000.0 / (double)(now - a->win_ns);
    double t = bivy_as_cpu_shrink(cur, used, &a->p);
    if (t > 0) {
      _cleanup_json_ json_t *before = json_real(cur), *after = json_real(t);
      done |= apply(in, "cpus", after, before, "quiet window: CPU used plus 25% headroom", now);
    }
  }
  (void)done;
  /* the next shrink (or none) after another full quiet window */
  a->calm_since_ns = now;
  a->win_ns = now;
  a->win_cpu_usec = u->cpu_usage_usec;
}

static void tick(struct loop_timer *t, uint64_t now) {
  struct scaling_state *a = t->data;
  struct bivyd_inst *in = a->in;
  loop_timer_set(t, now + TICK_NS);
  if (!a->on || in->state != S_RUNNING || a->cg == NULL) return;
  struct bivy_cgroup_usage u;
  _cleanup_error_ bivy_error_t err = NULL;
  if (bivy_cgroup_usage(a->cg, &u, &err) < 0) return;
  if (a->p.mem) mem_check(in, false, "memory usage above 80% of the limit", now, &u);
  if (a->p.cpu && a->psi_cpu_fd < 0) {
    /* no PSI: a period in five throttled since the last tick */
    uint64_t dp = u.cpu_periods - a->periods, dt = u.cpu_throttled - a->throttled;
    a->periods = u.cpu_periods;
    a->throttled = u.cpu_throttled;
    if (dp > 0 && dt * 5 >= dp) {
      a->calm_since_ns = now;
      cpu_grow(in, "cpu throttled (cpu.stat)", now);
    }
  }
  /* a grow in this very tick stamps calm_since_ns after `now`: not a quiet window (the
   * unsigned difference would wrap and shrink right after the grow) */
  if (a->calm_since_ns <= now && now - a->calm_since_ns >= a->p.quiet_ms * 1000000ull) shrink(in, &u, now);
}

static void scaling_free(struct bivyd_inst *in) {
  as_disarm(in);
  free(in->as);
  in->as = NULL;
}

void as_init(void) { inst_on_free_add(scaling_free); }

static struct scaling_state *state_of(struct bivyd_inst *in) {
  if (in->as) return in->as;
  struct scaling_state *a = calloc(1, sizeof *a);
  if (a == NULL) return NULL;
  a->in = in;
  a->mem_fd = a->psi_mem_fd = a->psi_cpu_fd = -1;
  a->w_mem = (struct loop_watch){mem_line_crossed, a};
  a->w_psi_mem = (struct loop_watch){mem_pressure, a};
  a->w_psi_cpu = (struct loop_watch){cpu_pressure, a};
  a->t_tick = (struct loop_timer){.fn = tick, .data = a};
  in->as = a;
  return a;
}

void as_arm(struct bivyd_inst *in) {
  as_disarm(in);
  json_t *pol = json_object_get(in->spec, "autoscale");
  struct scaling_state *a = pol && in->state == S_RUNNING ? state_of(in) : NULL;
  if (a == NULL) return;
  _cleanup_error_ bivy_error_t err = NULL;
  if (bivy_as_check(pol, "autoscale", &a->p, &err) < 0) {    bivyd_log("%s: autoscale: %s", in->name, err->msg);
    return;
  }
  a->cg = inst_cgroup(in);
  if (a->cg == NULL) {
    bivyd_log("%s: autoscale: the instance has no cgroup", in->name);
    return;
  }
  a->on = true;
  a->refused_mem = 0;
  a->refused_cpu = 0;
  uint64_t now = bivy_now_ns(), win;
  struct { bool on; const char *res; uint64_t stall; int *fd; struct loop_watch *w; } psi[] = {
      {a->p.mem, "memory", MEM_PSI_STALL_US, &a->psi_mem_fd, &a->w_psi_mem},
      {a->p.cpu, "cpu", CPU_PSI_STALL_US, &a->psi_cpu_fd, &a->w_psi_cpu}};
  for (size_t i = 0; i < 2; i++) {
    if (!psi[i].on) continue;
    int fd = bivy_cgroup_psi_trigger(a->cg, psi[i].res, psi[i].stall, &win, &err);
    if (fd < 0) {
      if (D.debug) bivyd_debug("%s: autoscale: %s", in->name, err->msg);
      continue;
    }
    *psi[i].fd = fd;
    loop_watch_add(fd, EPOLLPRI, psi[i].w);
  }
  arm_mem_watch(in);
  struct bivy_cgroup_usage u = {0};
  bivy_cgroup_usage(a->cg, &u, &err);
  a->calm_since_ns = a->win_ns = now;
  a->win_cpu_usec = u.cpu_usage_usec;
  a->periods = u.cpu_periods;
  a->throttled = u.cpu_throttled;
  loop_timer_set(&a->t_tick, now + TICK_NS);
}

void as_off(struct bivyd_inst *in) {
  struct scaling_state *a = in->as;
  if (a && a->cg && a->p.mem && bivy_cgroup_on_v2(a->cg, "memory")) {
    /* v2: lift the early-warning line (memory.high) that only the autoscaler wanted */
    _cleanup_error_ bivy_error_t err = NULL;
    int fd = bivy_cgroup_memory_watch(a->cg, UINT64_MAX, &err);
    if (fd >= 0) close(fd);
  }
  as_disarm(in);
}

void as_disarm(struct bivyd_inst *in) {
  struct scaling_state *a = in->as;
  if (a == NULL) return;
  loop_watch_close(&a->mem_fd);
  loop_watch_close(&a->psi_mem_fd);
  loop_watch_close(&a->psi_cpu_fd);
  if (a->cg) {
    bivy_cgroup_free(a->cg);
    a->cg = NULL;
  }
  a->on = false;
  loop_timer_stop(&a->t_tick);
}
