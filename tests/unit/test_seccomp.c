/* seccomp: parsing/validation, compilation, the built-in profiles, the compiled-filter cache
 * and (in Criterion's per-test child process) the filter's effect. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/seccomp-internal.h"
#include "runtime/seccomp.h"
#include "runtime/util.h"

static json_t *J(const char *text) {
  json_error_t e;
  json_t *j = json_loads(text, 0, &e);
  cr_assert_not_null(j, "bad test JSON: %s: %s", e.text, text);
  return j;
}

/* prepare must fail with exactly msg and leave *out NULL */
static void expect_error(const char *profile, const char *msg) {
  _cleanup_json_ json_t *j = J(profile);
  _cleanup_error_ bivy_error_t err = NULL;
  struct bivy_seccomp *s = (struct bivy_seccomp *)0x1;
  int r = bivy_seccomp_prepare(j, NULL, &s, &err);
  cr_assert_eq(r, -EINVAL, "expected -EINVAL for %s, got %d", profile, r);
  cr_assert_null(s);
  cr_assert_not_null(err);
  cr_assert_str_eq(err->msg, msg);
}

Test(seccomp_parse, errors_name_the_entry) {
  expect_error("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"getpid\"],\"action\":\"SCMP_ACT_ERRNO\"},"
               "{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ERRNO\",\"args\":[{\"index\":0,\"value\":1,\"op\":\"EQUALS\"}]}]}",
               "linux.seccomp.syscalls[1].args[0].op: unknown operator \"EQUALS\"");
  expect_error("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"getpid\"],\"action\":\"SCMP_ACT_FOO\"}]}",
               "linux.seccomp.syscalls[0].action: unknown action \"SCMP_ACT_FOO\"");
  expect_error("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],\"action\":\"SCMP_ACT_KILL\","
               "\"args\":[{\"index\":6,\"value\":1,\"op\":\"SCMP_CMP_EQ\"}]}]}",
               "linux.seccomp.syscalls[0].args[0].index: 6 out of range (0..5)");
  expect_error("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":[\"SCMP_ARCH_X86\",\"SCMP_ARCH_Z80\"]}",
               "linux.seccomp.architectures[1]: unknown architecture \"SCMP_ARCH_Z80\"");
  expect_error("{\"defaultAction\":\"SCMP_ACT_NOPE\"}", "linux.seccomp.defaultAction: unknown action \"SCMP_ACT_NOPE\"");
  expect_error("{\"defaultAction\":1}", "linux.seccomp.defaultAction: must be a string");
  expect_error("{\"syscalls\":[]}", "linux.seccomp.defaultAction: required");
  expect_error("[]", "linux.seccomp: must be an object");
  expect_error("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":\"read\",\"action\":\"SCMP_ACT_KILL\"}]}",
               "linux.seccomp.syscalls[0].names: must be a non-empty array of syscall names");
  expect_error("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\", 5],\"action\":\"SCMP_ACT_KILL\"}]}",
               "linux.seccomp.syscalls[0].names[1]: must be a syscall name");
  expect_error("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"]}]}",
               "linux.seccomp.syscalls[0].action: required");
  expect_error("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],\"action\":\"SCMP_ACT_KILL\","
               "\"args\":[{\"index\":0,\"value\":\"1\",\"op\":\"SCMP_CMP_EQ\"}]}]}",
               "linux.seccomp.syscalls[0].args[0].value: must be a non-negative integer");
  expect_error("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],\"action\":\"SCMP_ACT_KILL\","
               "\"args\":[{\"index\":0,\"value\":-1,\"op\":\"SCMP_CMP_EQ\"}]}]}",
               "linux.seccomp.syscalls[0].args[0].value: -1 out of range (0..9223372036854775807)");
  expect_error("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],\"action\":\"SCMP_ACT_KILL\","
               "\"args\":[{\"value\":1,\"op\":\"SCMP_CMP_EQ\"}]}]}",
               "linux.seccomp.syscalls[0].args[0].index: required");
  expect_error("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],\"action\":\"SCMP_ACT_KILL\","
               "\"args\":{}}]}",
               "linux.seccomp.syscalls[0].args: must be an array");
  expect_error("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ALLOW\","
               "\"errnoRet\":5}]}",
               "linux.seccomp.syscalls[0].errnoRet: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE");
  expect_error("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":70000}",
               "linux.seccomp.defaultErrnoRet: 70000 out of range (0..4095)");
  expect_error("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"flags\":[\"SECCOMP_FILTER_FLAG_BOGUS\"]}",
               "linux.seccomp.flags[0]: unknown flag \"SECCOMP_FILTER_FLAG_BOGUS\"");
  expect_error("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"mkdir\"],\"action\":\"SCMP_ACT_NOTIFY\"}]}",
               "linux.seccomp.listenerPath: required when an action is SCMP_ACT_NOTIFY");
  expect_error("{\"defaultAction\":\"SCMP_ACT_NOTIFY\",\"listenerPath\":\"/x\"}",
               "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action");
  expect_error("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"listenerPath\":\"/x\",\"syscalls\":[{\"names\":[\"mkdir\",\"write\"],"
               "\"action\":\"SCMP_ACT_NOTIFY\"}]}",
               "linux.seccomp.syscalls[0].names[1]: SCMP_ACT_NOTIFY cannot be used for \"write\" (the runtime needs it "
               "to hand over the listener fd)");
}

Test(seccomp_parse, fields) {
  _cleanup_json_ json_t *j =
      J("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":38,"
        "\"architectures\":[\"SCMP_ARCH_X86_64\",\"SCMP_ARCH_X86\",\"SCMP_ARCH_X86\"],"
        "\"flags\":[\"SECCOMP_FILTER_FLAG_LOG\",\"SECCOMP_FILTER_FLAG_SPEC_ALLOW\"],"
        "\"listenerPath\":\"/run/l.sock\",\"listenerMetadata\":\"m\","
        "\"syscalls\":[{\"names\":[\"read\",\"write\"],\"action\":\"SCMP_ACT_ALLOW\"},"
        "{\"names\":[\"mkdir\"],\"action\":\"SCMP_ACT_NOTIFY\"},"
        "{\"names\":[\"kill\"],\"action\":\"SCMP_ACT_ERRNO\"},"
        "{\"names\":[\"ptrace\"],\"action\":\"SCMP_ACT_TRACE\",\"errnoRet\":7},"
        "{\"names\":[\"clone\"],\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":0,\"value\":2114060288,"
        "\"valueTwo\":0,\"op\":\"SCMP_CMP_MASKED_EQ\"},{\"index\":1,\"value\":3,\"op\":\"SCMP_CMP_LE\"}]}]}");
  struct bivy_scmp_profile p;
  _cleanup_error_ bivy_error_t err = NULL;
  int r = bivy_scmp_parse(j, &p, &err);
  cr_assert_eq(r, 0, "%s", err ? err->msg : "");
  cr_assert_eq(p.default_action, SCMP_ACT_ERRNO(38));
  cr_assert_eq(p.n_arches, 2);
  cr_assert_eq(p.arches[0], SCMP_ARCH_X86_64);
  cr_assert_eq(p.arches[1], SCMP_ARCH_X86);
  cr_assert_eq(p.flags, SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW);
  cr_assert(p.notify);
  cr_assert_str_eq(p.listener_path, "/run/l.sock");
  cr_assert_str_eq(p.listener_metadata, "m");
  cr_assert_eq(p.n_rules, 5);
  cr_assert_eq(p.rules[0].action, SCMP_ACT_ALLOW);
  cr_assert_eq(json_array_size(p.rules[0].names), 2);
  cr_assert_eq(p.rules[1].action, SCMP_ACT_NOTIFY);
  cr_assert_eq(p.rules[2].action, SCMP_ACT_ERRNO(EPERM), "ERRNO without errnoRet is EPERM");
  cr_assert_eq(p.rules[3].action, SCMP_ACT_TRACE(7));
  cr_assert_eq(p.rules[4].n_args, 2);
  cr_assert_eq(p.rules[4].args[0].op, SCMP_CMP_MASKED_EQ);
  cr_assert_eq(p.rules[4].args[0].value, 2114060288u);
  cr_assert_eq(p.rules[4].args[1].index, 1);
  cr_assert_eq(p.rules[4].args[1].op, SCMP_CMP_LE);
  cr_assert_eq(p.rules[4].args[1].value, 3);
  bivy_scmp_profile_clear(&p);
}

Test(seccomp_parse, unknown_syscall_skipped_with_one_warning, .init = cr_redirect_stderr) {
  _cleanup_json_ json_t *j =
      J("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"bivy_no_such_call\",\"getppid\"],"
        "\"action\":\"SCMP_ACT_ERRNO\"},{\"names\":[\"bivy_no_such_call\"],\"action\":\"SCMP_ACT_KILL\"}]}");
  struct bivy_seccomp *s = NULL;
  _cleanup_error_ bivy_error_t err = NULL;
  cr_assert_eq(bivy_seccomp_prepare(j, NULL, &s, &err), 0, "%s", err ? err->msg : "");
  cr_assert_not_null(s);
  bivy_seccomp_free(s);
  fflush(stderr);
  cr_assert_stderr_eq_str("bivy: warning: seccomp: unknown syscall \"bivy_no_such_call\" skipped\n");
}

Test(seccomp_parse, allow_all_and_null_mean_no_filter) {
  struct bivy_seccomp *s = (struct bivy_seccomp *)0x1;
  _cleanup_error_ bivy_error_t err = NULL;
  cr_assert_eq(bivy_seccomp_prepare(NULL, NULL, &s, &err), 0);
  cr_assert_null(s);
  _cleanup_json_ json_t *j = J(bivy_seccomp_builtin("unconfined"));
  s = (struct bivy_seccomp *)0x1;
  cr_assert_eq(bivy_seccomp_prepare(j, NULL, &s, &err), 0);
  cr_assert_null(s);
  int fd = 5;
  cr_assert_eq(bivy_seccomp_install(NULL, &fd, &err), 0);
  cr_assert_eq(fd, -1);
}

/* compiling in a child (bivy_scmp_compile_guarded) gives exactly the in-process program */
Test(seccomp_compile, guarded_child_gives_the_same_program) {
  _cleanup_json_ json_t *j = J(bivy_seccomp_builtin("default"));
  _cleanup_error_ bivy_error_t err = NULL;
  struct bivy_scmp_profile p;
  cr_assert_eq(bivy_scmp_parse(j, &p, &err), 0, "%s", err ? err->msg : "");
  _cleanup_free_ struct sock_filter *a = NULL, *b = NULL;
  size_t na = 0, nb = 0;
  cr_assert_eq(bivy_scmp_compile(&p, &a, &na, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq(bivy_scmp_compile_guarded(&p, 10000, &b, &nb, &err), 0, "%s", err ? err->msg : "");
  bivy_scmp_profile_clear(&p);
  cr_assert_gt(na, 10);
  cr_assert_eq(na, nb);
  cr_assert_eq(memcmp(a, b, na * sizeof *a), 0);
}

/* libseccomp 2.5.4 never returns from seccomp_rule_add for this rule pair (found by
 * fuzz_seccomp): create must fail with an explanation instead of hanging, and reap its child */
#define LIBSECCOMP_LOOP                                                                                        \
  "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":["                                                      \
  "{\"names\":[\"getsid\"],\"action\":\"SCMP_ACT_KILL_PROCESS\",\"args\":[{\"index\":0,\"value\":1,\"op\":\"SCMP_CMP_GE\"}," \
  "{\"index\":1,\"value\":9,\"op\":\"SCMP_CMP_LT\"}]},"                                                      \
  "{\"names\":[\"getsid\"],\"action\":\"SCMP_ACT_TRACE\",\"args\":[{\"index\":0,\"value\":1,\"op\":\"SCMP_CMP_GE\"},"        \
  "{\"index\":2,\"value\":9,\"op\":\"SCMP_CMP_LT\"}]}]}"

Test(seccomp_compile, libseccomp_loop_times_out_with_an_explanation, .timeout = 30) {
  cr_assert_eq(setenv("BIVY_SECCOMP_COMPILE_TIMEOUT_MS", "300", 1), 0);
  _cleanup_json_ json_t *j = J(LIBSECCOMP_LOOP);
  _cleanup_error_ bivy_error_t err = NULL;
  struct bivy_seccomp *s = (struct bivy_seccomp *)0x1;
  cr_assert_eq(bivy_seccomp_prepare(j, NULL, &s, &err), -ETIMEDOUT);
  cr_assert_null(s);
  cr_assert_not_null(strstr(err->msg, "linux.seccomp: libseccomp did not finish compiling the profile within 300 ms"),
                     "%s", err->msg);
  cr_assert_eq(waitpid(-1, NULL, WNOHANG), -1, "the compiler child was reaped");
  cr_assert_eq(errno, ECHILD);
}

static bool names_have(json_t *profile, const char *action, const char *name) {
  size_t i, k;
  json_t *e, *n;
  json_array_foreach(json_object_get(profile, "syscalls"), i, e) {
    if (strcmp(json_string_value(json_object_get(e, "action")), action) != 0) continue;
    if (json_object_get(e, "args")) continue;
    json_array_foreach(json_object_get(e, "names"), k, n) if (strcmp(json_string_value(n), name) == 0) return true;
  }
  return false;
}

Test(seccomp_builtin, default_parses_compiles_and_blocks_the_dangerous_calls, .init = cr_redirect_stderr) {
  const char *text = bivy_seccomp_builtin("default");
  cr_assert_not_null(text);
  cr_assert_eq(bivy_seccomp_builtin("default"), text, "computed once");
  cr_assert_null(bivy_seccomp_builtin("nope"));
  _cleanup_json_ json_t *j = J(text);
  cr_assert_str_eq(json_string_value(json_object_get(j, "defaultAction")), "SCMP_ACT_ERRNO");
  cr_assert_eq(json_integer_value(json_object_get(j, "defaultErrnoRet")), EPERM);
  cr_assert_null(json_object_get(j, "archMap"), "annotations resolved away");
  if (seccomp_arch_native() == SCMP_ARCH_X86_64)
    cr_assert_eq(json_array_size(json_object_get(j, "architectures")), 3);
  const char *blocked[] = {"keyctl", "add_key", "request_key", "bpf", "kexec_load", "init_module", "finit_module",
                           "delete_module", "mount", "umount2", "unshare", "setns", "ptrace", "perf_event_open",
                           "clone3", "personality", "clone", "reboot", "chroot"};
  for (size_t i = 0; i < sizeof blocked / sizeof blocked[0]; i++)
    cr_assert(!names_have(j, "SCMP_ACT_ALLOW", blocked[i]), "%s allowed unconditionally", blocked[i]);
  const char *allowed[] = {"read", "write", "openat", "execve", "rt_sigprocmask", "close", "wait4", "socket"};
  for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
    cr_assert(names_have(j, "SCMP_ACT_ALLOW", allowed[i]), "%s not allowed", allowed[i]);
  size_t i;
  json_t *e;
  bool clone3_enosys = false, clone_masked = false;
  json_array_foreach(json_object_get(j, "syscalls"), i, e) {
    const char *n0 = json_string_value(json_array_get(json_object_get(e, "names"), 0));
    cr_assert_null(json_object_get(e, "includes"));
    cr_assert_null(json_object_get(e, "comment"));
    if (strcmp(n0, "clone3") == 0 && json_integer_value(json_object_get(e, "errnoRet")) == ENOSYS) clone3_enosys = true;
    if (strcmp(n0, "clone") == 0 &&
        strcmp(json_string_value(json_object_get(json_array_get(json_object_get(e, "args"), 0), "op")),
               "SCMP_CMP_MASKED_EQ") == 0)
      clone_masked = true;
  }
  cr_assert(clone3_enosys);
  cr_assert(clone_masked);

  struct bivy_seccomp *s = NULL;
  _cleanup_error_ bivy_error_t err = NULL;
  cr_assert_eq(bivy_seccomp_prepare(j, NULL, &s, &err), 0, "%s", err ? err->msg : "");
  cr_assert_not_null(s);
  cr_assert_gt(bivy_seccomp_program_size(s), 50);
  cr_assert(!bivy_seccomp_has_notify(s));
  bivy_seccomp_free(s);
  fflush(stderr);
  cr_assert_stderr_eq_str("", "the built-in profile names only syscalls this libseccomp knows");
}

Test(seccomp_builtin, capabilities_resolve_includes_and_excludes) {
  _cleanup_json_ json_t *admin = NULL, *plain = NULL;
  _cleanup_error_ bivy_error_t err = NULL;
  cr_assert_eq(bivy_seccomp_builtin_for_caps("default", 1ull << 21 /* CAP_SYS_ADMIN */, &admin, &err), 0);
  cr_assert_eq(bivy_seccomp_builtin_for_caps("default", 0, &plain, &err), 0);
  cr_assert(names_have(admin, "SCMP_ACT_ALLOW", "mount"));
  cr_assert(names_have(admin, "SCMP_ACT_ALLOW", "unshare"));
  cr_assert(names_have(admin, "SCMP_ACT_ALLOW", "clone"), "unconditional clone with CAP_SYS_ADMIN");
  cr_assert(names_have(admin, "SCMP_ACT_ALLOW", "clone3"));
  cr_assert(!names_have(admin, "SCMP_ACT_ERRNO", "clone3"), "the ENOSYS entry is excluded");
  cr_assert(!names_have(admin, "SCMP_ACT_ALLOW", "ptrace"));
  cr_assert(!names_have(plain, "SCMP_ACT_ALLOW", "mount"));
  cr_assert(names_have(plain, "SCMP_ACT_ERRNO", "clone3"));
  _cleanup_json_ json_t *ptrace = NULL;
  cr_assert_eq(bivy_seccomp_builtin_for_caps("default", 1ull << 19 /* CAP_SYS_PTRACE */, &ptrace, &err), 0);
  cr_assert(names_have(ptrace, "SCMP_ACT_ALLOW", "ptrace"));
  json_t *none = NULL;
  cr_assert_eq(bivy_seccomp_builtin_for_caps("nope", 0, &none, &err), -EINVAL);
  cr_assert_str_eq(err->msg, "unknown seccomp profile \"nope\" (built-in: default, unconfined)");
}

/* ---- cache ---- */

static char cache_dir[64];
static void mk_cache_dir(void) {
  strcpy(cache_dir, "/tmp/bivy-unit-scmp.XXXXXX");
  cr_assert_not_null(mkdtemp(cache_dir));
}
static void rm_cache_dir(void) {
  _cleanup_error_ bivy_error_t err = NULL;
  bivy_rm_rf(cache_dir, &err);
}

static const char small_profile[] =
    "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"getppid\"],\"action\":\"SCMP_ACT_ERRNO\","
    "\"errnoRet\":38}]}";

/* prepare in cache_dir; returns whether it came from the cache */
static bool prepare_cached(const char *text, size_t *insns) {
  _cleanup_json_ json_t *j = J(text);
  struct bivy_seccomp *s = NULL;
  _cleanup_error_ bivy_error_t err = NULL;
  cr_assert_eq(bivy_seccomp_prepare(j, cache_dir, &s, &err), 0, "%s", err ? err->msg : "");
  bool hit = bivy_seccomp_from_cache(s);
  if (insns) *insns = bivy_seccomp_program_size(s);
  bivy_seccomp_free(s);
  return hit;
}

static char *entry_path(const char *text) {
  _cleanup_json_ json_t *j = J(text);
  _cleanup_free_ char *canon = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
  return bivy_scmp_cache_path(cache_dir, bivy_scmp_cache_key(canon, strlen(canon)));
}

Test(seccomp_cache, key_is_canonical_and_discriminating) {
  const char *a = "{\"a\":1,\"b\":2}", *b = "{\"b\":2,\"a\":1}";
  _cleanup_json_ json_t *ja = J(a), *jb = J(b);
  _cleanup_free_ char *ca = json_dumps(ja, JSON_COMPACT | JSON_SORT_KEYS), *cb = json_dumps(jb, JSON_COMPACT | JSON_SORT_KEYS);
  cr_assert_str_eq(ca, cb);
  cr_assert_eq(bivy_scmp_cache_key(ca, strlen(ca)), bivy_scmp_cache_key(cb, strlen(cb)));
  cr_assert_neq(bivy_scmp_cache_key(ca, strlen(ca)), bivy_scmp_cache_key("{\"a\":1,\"b\":3}", 13));
  cr_assert_neq(bivy_scmp_cache_key("", 0), bivy_fnv1a_add(BIVY_FNV_OFFSET, "", 0), "key covers arch and versions");
  _cleanup_free_ char *p = bivy_scmp_cache_path("/d", 0xabcull);
  cr_assert_str_eq(p, "/d/0000000000000abc.bpf");
}

Test(seccomp_cache, miss_then_hit_with_the_same_program, .init = mk_cache_dir, .fini = rm_cache_dir) {
  size_t n1, n2;
  cr_assert(!prepare_cached(small_profile, &n1));
  _cleanup_free_ char *path = entry_path(small_profile);
  struct stat st;
  cr_assert_eq(stat(path, &st), 0, "entry written");
  cr_assert_eq(st.st_mode & 0777, 0600);
  cr_assert(prepare_cached(small_profile, &n2));
  cr_assert_eq(n1, n2);

  /* the cached program is byte-identical to a fresh compilation */
  _cleanup_json_ json_t *j = J(small_profile);
  struct bivy_scmp_profile p;
  _cleanup_error_ bivy_error_t err = NULL;
  cr_assert_eq(bivy_scmp_parse(j, &p, &err), 0);
  _cleanup_free_ struct sock_filter *fresh = NULL, *cached = NULL;
  size_t nf, nc;
  cr_assert_eq(bivy_scmp_compile(&p, &fresh, &nf, &err), 0);
  bivy_scmp_profile_clear(&p);
  _cleanup_free_ char *canon = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
  cr_assert_eq(bivy_scmp_cache_load(cache_dir, canon, strlen(canon), &cached, &nc), 1);
  cr_assert_eq(nf, nc);
  cr_assert_eq(memcmp(fresh, cached, nf * sizeof *fresh), 0);
}

static void damage(const char *path, void (*how)(int fd, off_t size)) {
  int fd = open(path, O_RDWR | O_CLOEXEC);
  cr_assert_geq(fd, 0);
  struct stat st;
  fstat(fd, &st);
  how(fd, st.st_size);
  close(fd);
}
static void truncate_half(int fd, off_t size) { cr_assert_eq(ftruncate(fd, size / 2), 0); }
static void flip_last_byte(int fd, off_t size) {
  unsigned char c;
  cr_assert_eq(pread(fd, &c, 1, size - 1), 1);
  c ^= 0x40;
  cr_assert_eq(pwrite(fd, &c, 1, size - 1), 1);
}
static void bad_magic(int fd, off_t size) {
  (void)size;
  cr_assert_eq(pwrite(fd, "XXXX", 4, 0), 4);
}
static void bad_version(int fd, off_t size) {
  (void)size;
  uint32_t v = 99;
  cr_assert_eq(pwrite(fd, &v, 4, offsetof(struct bivy_scmp_cache_header, version)), 4);
}
static void other_text(int fd, off_t size) {
  /* same length, same key in the header, consistent checksum: only the text differs */
  _cleanup_free_ char *buf = malloc((size_t)size);
  cr_assert_eq(pread(fd, buf, (size_t)size, 0), size);
  struct bivy_scmp_cache_header h;
  memcpy(&h, buf, sizeof h);
  char *t = buf + sizeof h;
  char *num = strstr(t, "38");
  cr_assert_not_null(num);
  num[1] = '9';
  h.checksum = bivy_fnv1a_add(BIVY_FNV_OFFSET, t, (size_t)size - sizeof h);
  memcpy(buf, &h, sizeof h);
  cr_assert_eq(pwrite(fd, buf, (size_t)size, 0), size);
}

static void check_rebuilt(void (*how)(int, off_t)) {
  size_t n;
  cr_assert(!prepare_cached(small_profile, &n));
  _cleanup_free_ char *path = entry_path(small_profile);
  struct stat good;
  cr_assert_eq(stat(path, &good), 0);
  damage(path, how);
  cr_assert(!prepare_cached(small_profile, NULL), "a damaged entry must not be used");
  struct stat again;
  cr_assert_eq(stat(path, &again), 0);
  cr_assert_eq(again.st_size, good.st_size, "the entry is rebuilt");
  cr_assert(prepare_cached(small_profile, NULL), "the rebuilt entry is used");
}

Test(seccomp_cache, truncated_entry_is_rebuilt, .init = mk_cache_dir, .fini = rm_cache_dir) {
  check_rebuilt(truncate_half);
}
Test(seccomp_cache, corrupt_program_is_rebuilt, .init = mk_cache_dir, .fini = rm_cache_dir) {
  check_rebuilt(flip_last_byte);
}
Test(seccomp_cache, bad_magic_is_rebuilt, .init = mk_cache_dir, .fini = rm_cache_dir) { check_rebuilt(bad_magic); }
Test(seccomp_cache, stale_format_is_rebuilt, .init = mk_cache_dir, .fini = rm_cache_dir) {
  check_rebuilt(bad_version);
}
Test(seccomp_cache, entry_for_another_profile_is_not_used, .init = mk_cache_dir, .fini = rm_cache_dir) {
  check_rebuilt(other_text);
}

Test(seccomp_cache, foreign_writable_dir_is_ignored, .init = mk_cache_dir, .fini = rm_cache_dir) {
  cr_assert(!prepare_cached(small_profile, NULL));
  cr_assert_eq(chmod(cache_dir, 0777), 0);
  cr_assert(!prepare_cached(small_profile, NULL), "a world-writable cache directory is not trusted");
  cr_assert_eq(chmod(cache_dir, 0700), 0);
  cr_assert(prepare_cached(small_profile, NULL));
}

/* ---- effect (Criterion runs each test in its own process) ----
 * Filtered calls are ones neither Criterion nor ASan/LSan make (LSan needs getppid). */

static void install(const char *text, int *nfd) {
  _cleanup_json_ json_t *j = J(text);
  struct bivy_seccomp *s = NULL;
  _cleanup_error_ bivy_error_t err = NULL;
  cr_assert_eq(bivy_seccomp_prepare(j, NULL, &s, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
  int fd;
  cr_assert_eq(bivy_seccomp_install(s, &fd, &err), 0, "%s", err ? err->msg : "");
  if (nfd) *nfd = fd;
  bivy_seccomp_free(s);
}

Test(seccomp_effect, errno_args_and_split_conditions) {
  install("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":["
          "{\"names\":[\"getitimer\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":38},"
          "{\"names\":[\"getpgid\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":33,"
          "\"args\":[{\"index\":0,\"value\":11111,\"op\":\"SCMP_CMP_EQ\"},{\"index\":0,\"value\":22222,\"op\":\"SCMP_CMP_EQ\"}]},"
          "{\"names\":[\"getsid\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":34,"
          "\"args\":[{\"index\":0,\"value\":4026531840,\"valueTwo\":1073741824,\"op\":\"SCMP_CMP_MASKED_EQ\"}]}]}",
          NULL);
  errno = 0;
  cr_assert_eq(syscall(SYS_getitimer, 0, NULL), -1);
  cr_assert_eq(errno, 38);
  cr_assert_eq(syscall(SYS_getpgid, 11111), -1);
  cr_assert_eq(errno, 33);
  cr_assert_eq(syscall(SYS_getpgid, 22222), -1);
  cr_assert_eq(errno, 33);
  cr_assert_geq(syscall(SYS_getpgid, 0), 0, "other argument values pass");
  cr_assert_eq(syscall(SYS_getsid, 0x40000001), -1);
  cr_assert_eq(errno, 34);
  cr_assert_geq(syscall(SYS_getsid, 0), 0);
  char buf[4096];
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  cr_assert_gt(n, 0);
  buf[n] = 0;
  cr_assert_not_null(strstr(buf, "Seccomp:\t2\n"));
  cr_assert_not_null(strstr(buf, "Seccomp_filters:\t1\n"));
}

Test(seccomp_effect, kill_process_signal, .signal = SIGSYS) {
  install("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"getitimer\"],\"action\":\"SCMP_ACT_KILL_PROCESS\"}]}",
          NULL);
  syscall(SYS_getitimer, 0, NULL);
}

Test(seccomp_effect, notify_gives_a_cloexec_listener_fd) {
  int nfd = -1;
  install("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"listenerPath\":\"/nonexistent\","
          "\"flags\":[\"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV\"],\"syscalls\":[{\"names\":[\"mkdirat\"],"
          "\"action\":\"SCMP_ACT_NOTIFY\"}]}",
          &nfd);
  cr_assert_geq(nfd, 0);
  cr_assert(fcntl(nfd, F_GETFD) & FD_CLOEXEC);
  close(nfd);
}

Test(seccomp_effect, listener_send_failure_names_the_path) {
  _cleanup_json_ json_t *j = J("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"listenerPath\":\"/nonexistent/l.sock\",\"syscalls\":"
                               "[{\"names\":[\"mkdirat\"],\"action\":\"SCMP_ACT_NOTIFY\"}]}");
  struct bivy_seccomp *s = NULL;
  _cleanup_error_ bivy_error_t err = NULL;
  cr_assert_eq(bivy_seccomp_prepare(j, NULL, &s, &err), 0);
  cr_assert_str_eq(bivy_seccomp_listener_path(s), "/nonexistent/l.sock");
  cr_assert_eq(bivy_seccomp_send_listener(s, 0, "{\"ociVersion\":\"1.2.0\"}", 1, &err), -ENOENT);
  cr_assert_str_eq(err->msg, "seccomp listener /nonexistent/l.sock: connect: No such file or directory");
  bivy_seccomp_free(s);
}
