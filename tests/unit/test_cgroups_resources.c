/* cgroups: OCI linux.resources translation (pure) and the device filter rules. */
#include <criterion/criterion.h>
#include <linux/bpf.h>
#include <string.h>

#include "cgroups/cgroups-internal.h"
#include "cgroups/cgroups.h"
#include "runtime/cleanup.h"

#define ALL_V2 0xffffffffu
#define ALL_V1 0u

static const char *value_of(struct bivy_cg_plan *p, const char *file) {
  for (size_t i = 0; i < p->n; i++)
    if (strcmp(p->w[i].file, file) == 0) return p->w[i].value;
  return NULL;
}

static int tr(const char *json, uint32_t mask, struct bivy_cg_plan *p, bivy_error_t *err) {
  json_error_t je;
  _cleanup_json_ json_t *j = json_loads(json, 0, &je);
  cr_assert_not_null(j, "bad test json: %s", je.text);
  return bivy_cg_translate(j, mask, "linux.resources", p, err);
}

Test(cgroups_resources, v2_mapping) {
  _cleanup_error_ bivy_error_t err = NULL;
  struct bivy_cg_plan p = {0};
  int r = tr("{\"memory\":{\"limit\":67108864,\"reservation\":33554432,\"swap\":100663296},"
             "\"cpu\":{\"shares\":1024,\"quota\":50000,\"period\":100000,\"cpus\":\"0-1\",\"mems\":\"0\",\"idle\":1},"
             "\"pids\":{\"limit\":32},"
             "\"blockIO\":{\"weight\":500,\"throttleReadBpsDevice\":[{\"major\":8,\"minor\":0,\"rate\":1048576}]},"
             "\"hugepageLimits\":[{\"pageSize\":\"2MB\",\"limit\":4194304}],"
             "\"unified\":{\"memory.high\":\"50000000\"}}",
             ALL_V2, &p, &err);
  cr_assert_eq(r, 0, "%s", err ? err->msg : "");
  cr_assert_str_eq(value_of(&p, "memory.max"), "67108864");
  cr_assert_str_eq(value_of(&p, "memory.low"), "33554432");
  cr_assert_str_eq(value_of(&p, "memory.swap.max"), "33554432"); /* swap - limit */
  cr_assert_str_eq(value_of(&p, "cpu.weight"), "39");              /* 1 + (1022 * 9999) / 262142 */
  cr_assert_str_eq(value_of(&p, "cpu.max"), "50000 100000");
  cr_assert_str_eq(value_of(&p, "cpu.idle"), "1");
  cr_assert_str_eq(value_of(&p, "cpuset.cpus"), "0-1");
  cr_assert_str_eq(value_of(&p, "cpuset.mems"), "0");
  cr_assert_str_eq(value_of(&p, "pids.max"), "32");
  cr_assert_str_eq(value_of(&p, "io.bfq.weight"), "500");
  cr_assert_str_eq(value_of(&p, "io.max"), "8:0 rbps=1048576");
  cr_assert_str_eq(value_of(&p, "hugetlb.2MB.max"), "4194304");
  cr_assert_str_eq(value_of(&p, "memory.high"), "50000000");
  bivy_cg_plan_clear(&p);
}

Test(cgroups_resources, v1_mapping) {
  _cleanup_error_ bivy_error_t err = NULL;
  struct bivy_cg_plan p = {0};
  int r = tr("{\"memory\":{\"limit\":67108864,\"reservation\":33554432,\"swap\":100663296},"
             "\"cpu\":{\"shares\":512,\"quota\":-1,\"period\":200000},\"pids\":{\"limit\":-1},"
             "\"blockIO\":{\"weight\":300,\"throttleWriteIOPSDevice\":[{\"major\":8,\"minor\":16,\"rate\":100}]}}",
             ALL_V1, &p, &err);
  cr_assert_eq(r, 0, "%s", err ? err->msg : "");
  cr_assert_str_eq(value_of(&p, "memory.limit_in_bytes"), "67108864");
  cr_assert_str_eq(value_of(&p, "memory.soft_limit_in_bytes"), "33554432");
  cr_assert_str_eq(value_of(&p, "memory.memsw.limit_in_bytes"), "100663296"); /* OCI swap as is */
  cr_assert_str_eq(value_of(&p, "cpu.shares"), "512");
  cr_assert_str_eq(value_of(&p, "cpu.cfs_quota_us"), "-1");
  cr_assert_str_eq(value_of(&p, "cpu.cfs_period_us"), "200000");
  cr_assert_str_eq(value_of(&p, "pids.max"), "max");
  cr_assert_str_eq(value_of(&p, "blkio.weight"), "300");
  cr_assert_str_eq(value_of(&p, "blkio.throttle.write_iops_device"), "8:16 100");
  bivy_cg_plan_clear(&p);
}

Test(cgroups_resources, cpu_weight_conversion_bounds) {
  _cleanup_error_ bivy_error_t err = NULL;
  struct bivy_cg_plan p = {0};
  cr_assert_eq(tr("{\"cpu\":{\"shares\":2}}", ALL_V2, &p, &err), 0);
  cr_assert_str_eq(value_of(&p, "cpu.weight"), "1");
  bivy_cg_plan_clear(&p);
  cr_assert_eq(tr("{\"cpu\":{\"shares\":262144}}", ALL_V2, &p, &err), 0);
  cr_assert_str_eq(value_of(&p, "cpu.weight"), "10000");
  bivy_cg_plan_clear(&p);
  cr_assert_eq(tr("{\"cpu\":{\"quota\":150000}}", ALL_V2, &p, &err), 0);
  cr_assert_str_eq(value_of(&p, "cpu.max"), "150000 100000");
  bivy_cg_plan_clear(&p);
  cr_assert_eq(tr("{\"memory\":{\"limit\":-1}}", ALL_V2, &p, &err), 0);
  cr_assert_str_eq(value_of(&p, "memory.max"), "max");
  bivy_cg_plan_clear(&p);
}

Test(cgroups_resources, errors_name_the_field) {
  struct {
    const char *json, *msg;
    uint32_t mask;
  } cases[] = {
      {"{\"memory\":{\"limit\":\"64M\"}}", "linux.resources.memory.limit: must be an integer", ALL_V2},
      {"{\"memory\":{\"swap\":100}}", "linux.resources.memory.swap: a swap limit needs a memory limit", ALL_V2},
      {"{\"memory\":{\"limit\":1000,\"swap\":100}}", "linux.resources.memory.swap: 100 is below", ALL_V2},
      {"{\"cpu\":{\"shares\":1}}", "linux.resources.cpu.shares: 1 is out of range", ALL_V2},
      {"{\"cpu\":{\"period\":10}}", "linux.resources.cpu.period", ALL_V2},
      {"{\"cpu\":{\"cpus\":\"0;1\"}}", "linux.resources.cpu.cpus", ALL_V2},
      {"{\"cpu\":{\"realtimeRuntime\":1000}}", "linux.resources.cpu.realtimeRuntime: real-time", ALL_V2},
      {"{\"unified\":{\"../x\":\"1\"}}", "not a cgroup file name", ALL_V2},
      {"{\"unified\":{\"cgroup.procs\":\"1\"}}", "not a file of a controller", ALL_V2},
      {"{\"unified\":{\"memory.max\":1}}", "value must be a string", ALL_V2},
      {"{\"hugepageLimits\":[{\"pageSize\":\"2XB\",\"limit\":1}]}", "hugepageLimits[0].pageSize", ALL_V2},
      {"{\"blockIO\":{\"weight\":5}}", "linux.resources.blockIO.weight", ALL_V1},
      {"{\"blockIO\":{\"throttleReadBpsDevice\":[{\"major\":8}]}}", "throttleReadBpsDevice[0]: needs major and minor", ALL_V1},
      {"{\"frobs\":{}}", "linux.resources.frobs: unknown resource", ALL_V2},
      {"{\"network\":{\"classID\":1}}", "linux.resources.network: not supported", ALL_V2},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    _cleanup_error_ bivy_error_t err = NULL;
    struct bivy_cg_plan p = {0};
    cr_assert_lt(tr(cases[i].json, cases[i].mask, &p, &err), 0, "%s accepted", cases[i].json);
    cr_assert(strstr(err->msg, cases[i].msg) != NULL, "%s: got \"%s\"", cases[i].json, err->msg);
    bivy_cg_plan_clear(&p);
  }
}

Test(cgroups_resources, needs) {
  json_error_t je;
  _cleanup_json_ json_t *j =
      json_loads("{\"memory\":{},\"cpu\":{\"cpus\":\"0\"},\"unified\":{\"pids.max\":\"3\"}}", 0, &je);
  uint32_t n = bivy_cg_resources_needs(j);
  cr_assert(n & (1u << CG_MEMORY));
  cr_assert(n & (1u << CG_CPUSET));
  cr_assert(n & (1u << CG_PIDS));
  cr_assert(!(n & (1u << CG_CPU)));
  cr_assert(!(n & (1u << CG_HUGETLB)));
}

Test(cgroups_resources, cpuset_list) {
  uint8_t bits[16];
  cr_assert_eq(bivy_cgroup_parse_list("0-2,5", bits, 128), 0);
  cr_assert_eq(bits[0], 0x27);
  cr_assert_lt(bivy_cgroup_parse_list("2-1", bits, 128), 0);
  cr_assert_lt(bivy_cgroup_parse_list("a", bits, 128), 0);
  cr_assert_eq(bivy_cgroup_parse_list("200", bits, 128), -ERANGE);
}

Test(cgroups_devices, parse_and_defaults) {
  _cleanup_error_ bivy_error_t err = NULL;
  json_error_t je;
  _cleanup_json_ json_t *j = json_loads(
      "[{\"allow\":false,\"access\":\"rwm\"},{\"allow\":true,\"type\":\"c\",\"major\":10,\"minor\":229,\"access\":\"rw\"}]",
      0, &je);
  _cleanup_free_ struct bivy_cg_dev_rule *rules = NULL;
  size_t n = 0;
  cr_assert_eq(bivy_cg_devices_parse(j, &rules, &n, &err), 0, "%s", err ? err->msg : "");
  cr_assert_gt(n, 2);
  cr_assert(!rules[0].allow);
  cr_assert_eq(rules[0].type, 'a');
  cr_assert_eq(rules[0].major, -1);
  cr_assert_eq(rules[1].major, 10);
  cr_assert_eq(rules[1].access, 3u);
  bool has_null = false;
  for (size_t i = 2; i < n; i++) has_null |= rules[i].allow && rules[i].major == 1 && rules[i].minor == 3;
  cr_assert(has_null, "default allow-list has /dev/null");

  _cleanup_json_ json_t *bad = json_loads("[{\"allow\":true,\"access\":\"rwx\"}]", 0, &je);
  _cleanup_free_ struct bivy_cg_dev_rule *r2 = NULL;
  cr_assert_lt(bivy_cg_devices_parse(bad, &r2, &n, &err), 0);
  cr_assert(strstr(err->msg, "linux.resources.devices[0].access") != NULL, "%s", err->msg);
}

/* Run the generated program in a tiny interpreter over the instructions bivy emits. */
static int run_prog(const struct bpf_insn *p, int n, uint32_t type, uint32_t access, uint32_t major, uint32_t minor) {
  uint64_t r[11] = {0};
  uint32_t ctx[3] = {(access << 16) | type, major, minor};
  for (int pc = 0; pc < n; pc++) {
    const struct bpf_insn *i = &p[pc];
    uint8_t cls = BPF_CLASS(i->code), op = BPF_OP(i->code);
    if (cls == BPF_LDX) r[i->dst_reg] = ctx[i->off / 4];
    else if (cls == BPF_ALU64) {
      uint64_t src = BPF_SRC(i->code) == BPF_X ? r[i->src_reg] : (uint64_t)(int64_t)i->imm;
      if (op == BPF_MOV) r[i->dst_reg] = src;
      else if (op == BPF_AND) r[i->dst_reg] &= src;
      else if (op == BPF_RSH) r[i->dst_reg] >>= src;
      else cr_assert_fail("unexpected alu op %x", op);
    } else if (cls == BPF_JMP) {
      if (op == BPF_EXIT) return (int)r[0];
      uint64_t imm = (uint64_t)(int64_t)i->imm;
      if ((op == BPF_JNE && r[i->dst_reg] != imm) || (op == BPF_JEQ && r[i->dst_reg] == imm)) pc += i->off;
    } else {
      cr_assert_fail("unexpected class %x", cls);
    }
  }
  cr_assert_fail("fell off the program");
  return -1;
}

Test(cgroups_devices, bpf_program_semantics) {
  _cleanup_error_ bivy_error_t err = NULL;
  json_error_t je;
  _cleanup_json_ json_t *j = json_loads(
      "[{\"allow\":false,\"access\":\"rwm\"},{\"allow\":true,\"type\":\"c\",\"major\":10,\"minor\":229,\"access\":\"r\"},"
      "{\"allow\":false,\"type\":\"c\",\"major\":1,\"minor\":9,\"access\":\"w\"}]",
      0, &je);
  _cleanup_free_ struct bivy_cg_dev_rule *rules = NULL;
  _cleanup_free_ struct bpf_insn *insns = NULL;
  size_t n = 0;
  cr_assert_eq(bivy_cg_devices_parse(j, &rules, &n, &err), 0);
  int cnt = bivy_cg_devices_bpf(rules, n, &insns, &err);
  cr_assert_gt(cnt, 0);
  const uint32_t C = BPF_DEVCG_DEV_CHAR, B = BPF_DEVCG_DEV_BLOCK, R = BPF_DEVCG_ACC_READ, W = BPF_DEVCG_ACC_WRITE,
                 M = BPF_DEVCG_ACC_MKNOD;
  cr_assert_eq(run_prog(insns, cnt, C, R | W, 1, 3), 1, "/dev/null rw (default allow)");
  cr_assert_eq(run_prog(insns, cnt, C, R, 10, 229), 1, "fuse r allowed");
  cr_assert_eq(run_prog(insns, cnt, C, R | W, 10, 229), 0, "fuse rw: w not allowed");
  cr_assert_eq(run_prog(insns, cnt, C, R, 8, 0), 0, "unlisted char device denied");
  cr_assert_eq(run_prog(insns, cnt, B, R, 8, 0), 0, "block device read denied");
  cr_assert_eq(run_prog(insns, cnt, B, M, 8, 0), 1, "mknod allowed (default)");
  cr_assert_eq(run_prog(insns, cnt, C, R, 136, 7), 1, "pts/7");
  /* the default allow-list is appended after the config's rules, as runc does */
  cr_assert_eq(run_prog(insns, cnt, C, W, 1, 9), 1, "urandom w: default re-allows");
}
