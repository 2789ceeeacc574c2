/* linux.resources.devices: the devices cgroup on v1 (devices.allow / devices.deny), an eBPF
 * BPF_PROG_TYPE_CGROUP_DEVICE program on v2.
 *
 * Rules are applied in order, later rules win; runc's default allow-list is appended so the
 * usual "deny everything" default config still leaves /dev/null & co. usable.
 * The eBPF program walks the rules from last to first; the first that matches decides:
 *   - an allow rule matches when every requested access bit is in the rule,
 *   - a deny rule matches when any requested access bit is in the rule,
 * and nothing matching means deny (the conservative reading of overlapping rules). */
#include <errno.h>
#include <inttypes.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cgroups/cgroups-internal.h"
#include "runtime/cleanup.h"

#define ACC_R 1u
#define ACC_W 2u
#define ACC_M 4u

static const struct bivy_cg_dev_rule default_rules[] = {
    {true, 'c', -1, -1, ACC_M}, {true, 'b', -1, -1, ACC_M},                       /* mknod (CAP_MKNOD still needed) */
    {true, 'c', 1, 3, 7},       {true, 'c', 1, 5, 7},   {true, 'c', 1, 7, 7},     /* null zero full */
    {true, 'c', 1, 8, 7},       {true, 'c', 1, 9, 7},                             /* random urandom */
    {true, 'c', 5, 0, 7},       {true, 'c', 5, 1, 7},   {true, 'c', 5, 2, 7},     /* tty console ptmx */
    {true, 'c', 136, -1, 7},    {true, 'c', 10, 200, 7},                          /* pts/N, net/tun */
};

static int get_num(json_t *e, const char *key, const char *where, int64_t *out, bivy_error_t *err) {
  json_t *v = json_object_get(e, key);
  *out = -1;
  if (v == NULL || json_is_null(v)) return 0;
  if (!json_is_integer(v) || json_integer_value(v) < -1)
    return bivy_error(err, 0, "%s.%s: must be a device number (or -1 for any)", where, key);
  *out = json_integer_value(v);
  return 0;
}

int bivy_cg_devices_parse(json_t *devices, struct bivy_cg_dev_rule **rules, size_t *n, bivy_error_t *err) {
  const size_t nd = sizeof default_rules / sizeof default_rules[0];
  size_t cnt = json_array_size(devices);
  _cleanup_free_ struct bivy_cg_dev_rule *rs = calloc(cnt + nd, sizeof *rs);
  if (rs == NULL) return bivy_error(err, ENOMEM, "devices");
  size_t i;
  json_t *e;
  json_array_foreach(devices, i, e) {
    char w[80];
    snprintf(w, sizeof w, "linux.resources.devices[%zu]", i);
    struct bivy_cg_dev_rule *r = &rs[i];
    json_t *allow = json_object_get(e, "allow");
    if (!json_is_boolean(allow)) return bivy_error(err, 0, "%s.allow: required boolean", w);
    r->allow = json_is_true(allow);
    json_t *t = json_object_get(e, "type");
    const char *ts = t && !json_is_null(t) ? json_string_value(t) : "a";
    if (ts == NULL || strlen(ts) != 1 || !strchr("acb", ts[0]))
      return bivy_error(err, 0, "%s.type: must be \"a\", \"c\" or \"b\"", w);
    r->type = ts[0];
    int rc;
    if ((rc = get_num(e, "major", w, &r->major, err)) < 0 || (rc = get_num(e, "minor", w, &r->minor, err)) < 0) return rc;
    json_t *acc = json_object_get(e, "access");
    const char *as = acc && !json_is_null(acc) ? json_string_value(acc) : "rwm";
    if (as == NULL || *as == '\0') as = "rwm";
    for (const char *p = as; *p; p++) {
      if (*p == 'r') r->access |= ACC_R;
      else if (*p == 'w') r->access |= ACC_W;
      else if (*p == 'm') r->access |= ACC_M;
      else return bivy_error(err, 0, "%s.access: \"%s\": only r, w and m are allowed", w, as);
    }
    if (r->type == 'a') r->major = r->minor = -1;
  }
  memcpy(rs + cnt, default_rules, sizeof default_rules);
  *n = cnt + nd;
  *rules = steal_pointer(&rs);
  return 0;
}

static void rule_str(const struct bivy_cg_dev_rule *r, char *buf, size_t len) {
  char maj[24], min[24], acc[4];
  size_t k = 0;
  if (r->type == 'a') {
    snprintf(buf, len, "a");
    return;
  }
  if (r->major < 0) strcpy(maj, "*");
  else snprintf(maj, sizeof maj, "%" PRId64, r->major);
  if (r->minor < 0) strcpy(min, "*");
  else snprintf(min, sizeof min, "%" PRId64, r->minor);
  if (r->access & ACC_R) acc[k++] = 'r';
  if (r->access & ACC_W) acc[k++] = 'w';
  if (r->access & ACC_M) acc[k++] = 'm';
  acc[k] = '\0';
  snprintf(buf, len, "%c %s:%s %s", r->type, maj, min, acc);
}

int bivy_cg_devices_v1(struct bivy_cgroup *cg, json_t *devices, bivy_error_t *err) {
  _cleanup_free_ struct bivy_cg_dev_rule *rules = NULL;
  size_t n = 0;
  int r = bivy_cg_devices_parse(devices, &rules, &n, err);
  if (r < 0) return r;
  int fd = cg_ctrl_fd(cg, CG_DEVICES);
  for (size_t i = 0; i < n; i++) {
    char buf[96];
    rule_str(&rules[i], buf, sizeof buf);
    const char *file = rules[i].allow ? "devices.allow" : "devices.deny";
    if ((r = bivy_cg_write(fd, file, buf, err)) < 0) {
      if (i < json_array_size(devices)) return bivy_error_wrap(err, "linux.resources.devices[%zu]", i);
      return bivy_error_wrap(err, "default device rule \"%s\"", buf);
    }
  }
  return 0;
}

/* ---- eBPF ---- */

#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})

int bivy_cg_devices_bpf(const struct bivy_cg_dev_rule *rules, size_t n, struct bpf_insn **out, bivy_error_t *err) {
  size_t cap = 8 + n * 12;
  _cleanup_free_ struct bpf_insn *p = calloc(cap, sizeof *p);
  if (p == NULL) return bivy_error(err, ENOMEM, "devices program");
  size_t k = 0;
  /* r2 = type, r3 = access, r4 = major, r5 = minor (struct bpf_cgroup_dev_ctx) */
  p[k++] = INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_1, 0, 0);
  p[k++] = INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_3, BPF_REG_2, 0, 0);
  p[k++] = INSN(BPF_ALU64 | BPF_AND | BPF_K, BPF_REG_2, 0, 0, 0xffff);
  p[k++] = INSN(BPF_ALU64 | BPF_RSH | BPF_K, BPF_REG_3, 0, 0, 16);
  p[k++] = INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_4, BPF_REG_1, 4, 0);
  p[k++] = INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_5, BPF_REG_1, 8, 0);
  for (size_t i = n; i-- > 0;) {
    const struct bivy_cg_dev_rule *r = &rules[i];
    struct bpf_insn blk[12];
    size_t b = 0;
    /* each test jumps to the end of the block when the rule does not match */
    if (r->type != 'a')
      blk[b++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_2, 0, 0, r->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR);
    unsigned acc = (r->access & ACC_R ? BPF_DEVCG_ACC_READ : 0) | (r->access & ACC_W ? BPF_DEVCG_ACC_WRITE : 0) |
                   (r->access & ACC_M ? BPF_DEVCG_ACC_MKNOD : 0);
    if (acc != (BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD)) {
      blk[b++] = INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_6, BPF_REG_3, 0, 0);
      if (r->allow) { /* requested bits outside the rule: no match */
        blk[b++] = INSN(BPF_ALU64 | BPF_AND | BPF_K, BPF_REG_6, 0, 0, (int32_t)~acc);
        blk[b++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_6, 0, 0, 0);
      } else { /* no requested bit in the rule: no match */
        blk[b++] = INSN(BPF_ALU64 | BPF_AND | BPF_K, BPF_REG_6, 0, 0, (int32_t)acc);
        blk[b++] = INSN(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_6, 0, 0, 0);
      }
    }
    if (r->major >= 0) blk[b++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_4, 0, 0, (int32_t)r->major);
    if (r->minor >= 0) blk[b++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_5, 0, 0, (int32_t)r->minor);
    blk[b++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, r->allow ? 1 : 0);
    blk[b++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    for (size_t j = 0; j < b; j++) {
      if (BPF_CLASS(blk[j].code) == BPF_JMP && BPF_OP(blk[j].code) != BPF_EXIT) blk[j].off = (int16_t)(b - 1 - j);
      p[k++] = blk[j];
    }
    /* a rule matching everything decides alone: the verifier rejects unreachable code */
    if (b == 2) {
      *out = steal_pointer(&p);
      return (int)k;
    }
  }
  p[k++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0);
  p[k++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  *out = steal_pointer(&p);
  return (int)k;
}

int bivy_cg_devices_v2(struct bivy_cgroup *cg, json_t *devices, bivy_error_t *err) {
  _cleanup_free_ struct bivy_cg_dev_rule *rules = NULL;
  _cleanup_free_ struct bpf_insn *insns = NULL;
  size_t n = 0;
  int r = bivy_cg_devices_parse(devices, &rules, &n, err);
  if (r < 0) return r;
  int cnt = bivy_cg_devices_bpf(rules, n, &insns, err);
  if (cnt < 0) return cnt;
  if (cg->v2 < 0 || cg->h[cg->v2].fd < 0)
    return bivy_error(err, 0, "linux.resources.devices: no devices cgroup and no cgroup v2 to attach an eBPF filter to");
  char log[4096] = "";
  union bpf_attr la;
  memset(&la, 0, sizeof la);
  la.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  la.insns = (uint64_t)(uintptr_t)insns;
  la.insn_cnt = (uint32_t)cnt;
  la.license = (uint64_t)(uintptr_t)"Apache-2.0";
  la.log_buf = (uint64_t)(uintptr_t)log;
  la.log_size = sizeof log;
  la.log_level = 1;
  _cleanup_close_ int prog = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &la, sizeof la);
  if (prog < 0 && errno == ENOSPC) { /* log too small: retry without it */
    la.log_buf = 0;
    la.log_size = 0;
    la.log_level = 0;
    prog = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &la, sizeof la);
  }
  if (prog < 0) {
    int e = errno;
    log[strcspn(log, "\n")] = '\0'; /* the verifier's first line says why */
    return bivy_error(err, e, "linux.resources.devices: load eBPF device filter%s%s", *log ? ": " : "", log);
  }
  union bpf_attr aa;
  memset(&aa, 0, sizeof aa);
  aa.target_fd = (uint32_t)cg->h[cg->v2].fd;
  aa.attach_bpf_fd = (uint32_t)prog;
  aa.attach_type = BPF_CGROUP_DEVICE;
  aa.attach_flags = BPF_F_ALLOW_MULTI;
  /* the cgroup keeps the program alive after our fd closes */
  if (syscall(SYS_bpf, BPF_PROG_ATTACH, &aa, sizeof aa) < 0)
    return bivy_error_errno(err, "linux.resources.devices: attach eBPF device filter to %s", cg->h[cg->v2].dir);
  return 0;
}
