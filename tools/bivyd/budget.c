/* bivyd layer 3 (supervision): the host budget check (see budget.h). */
#include "tools/bivyd/budget.h"

#include <errno.h>

#include "runtime/util.h"
#include "tools/bivyd/conf.h"
#include "tools/bivyd/instance.h"

double budget_others_sum(struct bivyd_inst *self, const char *key) {
  double sum = 0;
  for (struct bivyd_inst *o = T.insts; o; o = o->next) {
    if (o == self || o->removed || o->state == S_STOPPED || o->state == S_EXITED) continue;
    json_t *v = json_object_get(json_object_get(o->spec, "limits"), key);
    if (json_is_number(v) && json_number_value(v) > 0) sum += json_number_value(v);
  }
  return sum;
}

int budget_check(struct bivyd_inst *self, json_t *limits, bivy_error_t *err) {
  char a[32], b[32], c[32];
  if (D.budget_mem) {
    json_t *m = json_object_get(limits, "memory");
    if (!json_is_integer(m) || json_integer_value(m) <= 0)
      return bivy_error(err, ENOSPC, "bivyd runs with --budget-memory: the instance needs a memory limit (--memory or --autoscale memory=MIN:MAX)");
    double used = budget_others_sum(self, "memory");
    bivy_format_size((uint64_t)json_integer_value(m), a, sizeof a);
    bivy_format_size(D.budget_mem, b, sizeof b);
    bivy_format_size((uint64_t)used, c, sizeof c);
    if (used + (double)json_integer_value(m) > (double)D.budget_mem)
      return bivy_error(err, ENOSPC, "memory limit %s does not fit the host budget (--budget-memory %s, %s held by other instances)", a, b, c);
  }
  if (D.budget_cpus > 0) {
    json_t *cp = json_object_get(limits, "cpus");
    if (!json_is_number(cp))
      return bivy_error(err, ENOSPC, "bivyd runs with --budget-cpus: the instance needs a CPU limit (--cpus or --autoscale cpus=MIN:MAX)");
    double used = budget_others_sum(self, "cpus");
    if (used + json_number_value(cp) > D.budget_cpus + 1e-9)
      return bivy_error(err, ENOSPC, "cpus %g does not fit the host budget (--budget-cpus %g, %g held by other instances)",
                        json_number_value(cp), D.budget_cpus, used);
  }
  return 0;
}
