// fuzz-sources: cgroups/resources.c cgroups/devices.c runtime/error.c runtime/util.c
// fuzz-seconds: 30
/* libFuzzer target: arbitrary bytes as linux.resources (from an untrusted config.json or
 * `bivy update -r`). Translation, device-rule parsing and the eBPF program builder must never
 * crash or leak, and what they accept must be safe to write: file names without '/' or "..",
 * jumps that stay inside the program. */
#include <linux/bpf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cgroups/cgroups-internal.h"
#include "runtime/cleanup.h"

/* the pure code under test only needs these from cgroups.c (which links libcgroup) */
const char *bivy_cg_ctrl_name(enum bivy_ctrl c, bool v2) {
  (void)v2;
  return c < CG_CTRL_COUNT ? "ctrl" : "?";
}
const char *bivy_cgroup_mode_name(enum bivy_cgroup_mode m) { return m == BIVY_CGROUP_UNIFIED ? "unified" : "other"; }
int bivy_cg_write(int dirfd, const char *file, const char *value, bivy_error_t *err) {
  (void)dirfd, (void)file, (void)value, (void)err;
  abort(); /* never reached: nothing here has a cgroup */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint32_t mask = data[0] & 1 ? 0xffffffffu : 0;
  json_error_t je;
  json_t *j = json_loadb((const char *)data + 1, size - 1, 0, &je);
  if (j == NULL) return 0;
  bivy_error_t err = NULL;
  struct bivy_cg_plan p = {0};
  if (bivy_cg_translate(j, mask, "linux.resources", &p, &err) == 0) {
    for (size_t i = 0; i < p.n; i++) {
      if (strchr(p.w[i].file, '/') || strstr(p.w[i].file, "..")) abort();
      if (p.w[i].ctrl >= CG_CTRL_COUNT) abort();
    }
  }
  bivy_cg_plan_clear(&p);
  bivy_error_release(&err);
  (void)bivy_cg_resources_needs(j);
  json_t *dev = json_object_get(j, "devices");
  if (json_is_array(dev)) {
    struct bivy_cg_dev_rule *rules = NULL;
    size_t n = 0;
    if (bivy_cg_devices_parse(dev, &rules, &n, &err) == 0) {
      struct bpf_insn *insns = NULL;
      int cnt = bivy_cg_devices_bpf(rules, n, &insns, &err);
      for (int i = 0; i < cnt; i++)
        if (BPF_CLASS(insns[i].code) == BPF_JMP && BPF_OP(insns[i].code) != BPF_EXIT &&
            (i + 1 + insns[i].off >= cnt || insns[i].off < 0))
          abort();
      free(insns);
    }
    free(rules);
    bivy_error_release(&err);
  }
  json_decref(j);
  return 0;
}
