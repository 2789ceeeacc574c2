/* OCI linux.seccomp: compile with libseccomp (or take the program from the cache), load it
 * with the raw seccomp(2) call in the container process, and hand a notify fd to the
 * listener. Parsing lives in seccomp-parse.c, the cache in seccomp-cache.c, the built-in
 * profiles in seccomp-profiles.c. */
#include "runtime/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/seccomp-internal.h"
#include "runtime/util.h"

#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif

struct bivy_seccomp {
  struct sock_filter *prog;
  size_t n_insns;
  unsigned int flags; /* SECCOMP_FILTER_FLAG_* to load with (supported by this kernel) */
  bool notify;
  bool from_cache;
  char *listener_path, *listener_metadata;
};

static void scmp_ctx_releasep(scmp_filter_ctx *c) {
  if (*c) seccomp_release(*c);
}

/* Warn once per name per process: a profile written for a newer kernel or libseccomp names
 * syscalls we cannot resolve; established runtimes skip them too. */
static void warn_unknown_once(const char *name) {
  static char *seen[64];
  static size_t n_seen;
  for (size_t i = 0; i < n_seen; i++)
    if (strcmp(seen[i], name) == 0) return;
  if (n_seen < sizeof seen / sizeof seen[0]) seen[n_seen++] = strdup(name);
  fprintf(stderr, "bivy: warning: seccomp: unknown syscall \"%s\" skipped\n", name);
}

static int add_rule(scmp_filter_ctx ctx, const struct bivy_scmp_rule *rule, int nr, const char *name,
                    bivy_error_t *err) {
  struct scmp_arg_cmp cmp[6];
  bool split = false;
  for (size_t i = 0; i < rule->n_args; i++) {
    cmp[i] = (struct scmp_arg_cmp){.arg = rule->args[i].index, .op = rule->args[i].op,
                                   .datum_a = rule->args[i].value, .datum_b = rule->args[i].value_two};
    for (size_t k = 0; k < i; k++)
      if (rule->args[k].index == rule->args[i].index) split = true;
  }
  int r = 0;
  if (!split) {
    r = seccomp_rule_add_array(ctx, rule->action, nr, (unsigned)rule->n_args, cmp);
  } else {
    /* libseccomp refuses two comparisons on one argument in a rule: like runc, add one rule
     * per comparison (they then combine with OR) */
    for (size_t i = 0; i < rule->n_args && r >= 0; i++) r = seccomp_rule_add_array(ctx, rule->action, nr, 1, &cmp[i]);
  }
  if (r == -EEXIST) r = 0;
  if (r < 0)
    return bivy_error(err, -r, "linux.seccomp.syscalls[%zu]: syscall \"%s\": libseccomp rejected the rule",
                      rule->index, name);
  return 0;
}

/* An allow-list written before a syscall existed answers it with its default action,
 * usually EPERM, and callers (glibc's fchmodat2 or clone3 wrappers...) only fall back to an
 * older call on ENOSYS. Like runc, answer ENOSYS for native syscall numbers above every
 * number the profile names. Only for an ERRNO default action: deny-lists let new syscalls
 * through anyway, and a KILL/TRAP default asks for exactly that. Returns the maximum, or -1
 * when no stub is wanted. */
static int allowlist_max_nr(const struct bivy_scmp_profile *p) {
  if ((p->default_action & 0xffff0000u) != SCMP_ACT_ERRNO(0)) return -1;
  int max_nr = -1;
  for (size_t i = 0; i < p->n_rules; i++) {
    size_t k;
    json_t *jn;
    json_array_foreach(p->rules[i].names, k, jn) {
      int nr = seccomp_syscall_resolve_name(json_string_value(jn));
      if (nr > max_nr) max_nr = nr;
    }
  }
  return max_nr;
}

#define ENOSYS_STUB_LEN 6
/* Prepended to libseccomp's program (which starts by loading the arch itself): for the
 * native arch, a syscall number above max_nr returns ENOSYS. x32 numbers (bit 30) are left
 * to the program. Jumps are relative to the next instruction. */
static void enosys_stub(struct sock_filter *f, uint32_t max_nr) {
  f[0] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
  f[1] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, seccomp_arch_native(), 0, 4);
  f[2] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
  f[3] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x40000000u, 2, 0);
  f[4] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, max_nr, 0, 1);
  f[5] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
}

int bivy_scmp_compile(const struct bivy_scmp_profile *p, struct sock_filter **prog, size_t *n_insns,
                      bivy_error_t *err) {
  *prog = NULL;
  *n_insns = 0;
  _cleanup_(scmp_ctx_releasep) scmp_filter_ctx ctx = seccomp_init(p->default_action);
  if (ctx == NULL) return bivy_error(err, ENOMEM, "linux.seccomp: libseccomp init");
  int r;
  /* plain -errno results from libseccomp, and a binary-tree filter: fewer instructions run per syscall */
  (void)seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1);
  (void)seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
  for (size_t i = 0; i < p->n_arches; i++) {
    r = seccomp_arch_add(ctx, p->arches[i]);
    if (r < 0 && r != -EEXIST)
      return bivy_error(err, -r, "linux.seccomp.architectures: add architecture 0x%x", p->arches[i]);
  }
  for (size_t i = 0; i < p->n_rules; i++) {
    const struct bivy_scmp_rule *rule = &p->rules[i];
    /* libseccomp rejects rules that repeat the default action; they are no-ops anyway */
    if (rule->action == p->default_action) continue;
    size_t k;
    json_t *jn;
    json_array_foreach(rule->names, k, jn) {
      const char *name = json_string_value(jn);
      int nr = seccomp_syscall_resolve_name(name);
      if (nr == __NR_SCMP_ERROR) {
        warn_unknown_once(name);
        continue;
      }
      if ((r = add_rule(ctx, rule, nr, name, err)) < 0) return r;
    }
  }
  _cleanup_close_ int mfd = memfd_create("bivy-seccomp", MFD_CLOEXEC);
  if (mfd < 0) return bivy_error_errno(err, "linux.seccomp: memfd_create");
  if ((r = seccomp_export_bpf(ctx, mfd)) < 0) return bivy_error(err, -r, "linux.seccomp: export BPF");
  struct stat st;
  if (fstat(mfd, &st) < 0) return bivy_error_errno(err, "linux.seccomp: fstat memfd");
  size_t n = (size_t)st.st_size / sizeof(struct sock_filter);
  if (n == 0 || n > BPF_MAXINSNS || (size_t)st.st_size % sizeof(struct sock_filter) != 0)
    return bivy_error(err, E2BIG, "linux.seccomp: compiled program has %zu instructions (max %d)", n, BPF_MAXINSNS);
  int max_nr = allowlist_max_nr(p);
  size_t stub = max_nr >= 0 ? ENOSYS_STUB_LEN : 0;
  if (n + stub > BPF_MAXINSNS)
    return bivy_error(err, E2BIG, "linux.seccomp: compiled program has %zu instructions (max %d)", n + stub,
                      BPF_MAXINSNS);
  _cleanup_free_ struct sock_filter *insns = malloc((n + stub) * sizeof *insns);
  if (insns == NULL) return bivy_error(err, ENOMEM, "linux.seccomp");
  ssize_t got = pread(mfd, insns + stub, (size_t)st.st_size, 0);
  if (got != st.st_size) return bivy_error(err, got < 0 ? errno : EIO, "linux.seccomp: read back BPF");
  if (stub) enosys_stub(insns, (uint32_t)max_nr);
  *prog = steal_pointer(&insns);
  *n_insns = n + stub;
  return 0;
}

/* BIVY_SECCOMP_COMPILE_TIMEOUT_MS overrides the 10 s budget (tests use a short one). */
static int compile_timeout_ms(void) {
  const char *v = getenv("BIVY_SECCOMP_COMPILE_TIMEOUT_MS");
  int64_t ms;
  return v && bivy_parse_i64(v, &ms) == 0 && ms > 0 && ms <= 3600000 ? (int)ms : 10000;
}

/* libseccomp 2.5.4 (Debian 12) never returns from seccomp_rule_add for some rule sets: two
 * rules for one syscall that share a range or NE comparison on one argument and then compare
 * different arguments (found by tests/fuzz/fuzz_seccomp). A config must not hang `create`,
 * so a profile that is not in the cache compiles in a child that gets timeout_ms to finish;
 * its program (or error message) comes back through a memfd. Costs one fork per cache miss. */
int bivy_scmp_compile_guarded(const struct bivy_scmp_profile *p, int timeout_ms, struct sock_filter **prog,
                              size_t *n_insns, bivy_error_t *err) {
  *prog = NULL;
  *n_insns = 0;
  _cleanup_close_ int mfd = memfd_create("bivy-seccomp-out", MFD_CLOEXEC);
  if (mfd < 0) return bivy_error_errno(err, "linux.seccomp: memfd_create");
  pid_t pid = fork();
  if (pid < 0) return bivy_error_errno(err, "linux.seccomp: fork the compiler");
  if (pid == 0) {
    struct sock_filter *out = NULL;
    size_t n = 0;
    bivy_error_t cerr = NULL;
    int r = bivy_scmp_compile(p, &out, &n, &cerr);
    const void *buf = r == 0 ? (const void *)out : (const void *)(cerr ? cerr->msg : "linux.seccomp: compile");
    size_t len = r == 0 ? n * sizeof *out : strlen(buf);
    if (write(mfd, buf, len) != (ssize_t)len) _exit(EIO);
    _exit(r == 0 ? 0 : (-r & 0xff) ? (-r & 0xff) : EINVAL);
  }
  _cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  int ready = 1;
  if (pidfd >= 0) {
    struct pollfd pf = {.fd = pidfd, .events = POLLIN};
    do ready = poll(&pf, 1, timeout_ms);
    while (ready < 0 && errno == EINTR);
  }
  if (ready == 0) kill(pid, SIGKILL); /* our own child, still inside libseccomp */
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (ready == 0)
    return bivy_error(err, ETIMEDOUT,
                      "linux.seccomp: libseccomp did not finish compiling the profile within %d ms (libseccomp 2.5 "
                      "loops on some combinations of conditional rules for one syscall); merge or simplify the "
                      "rules that compare arguments of the same syscall",
                      timeout_ms);
  _cleanup_free_ char *data = NULL;
  size_t len = 0;
  if (lseek(mfd, 0, SEEK_SET) < 0 || bivy_read_fd(mfd, "compiled seccomp program", &data, &len, err) < 0)
    return bivy_error_wrap(err, "linux.seccomp");
  if (!WIFEXITED(status)) return bivy_error(err, EIO, "linux.seccomp: the compiler process died (status 0x%x)", status);
  if (WEXITSTATUS(status) != 0) return bivy_error_plain(err, WEXITSTATUS(status), "%s", data);
  if (len == 0 || len % sizeof(struct sock_filter) != 0)
    return bivy_error(err, EIO, "linux.seccomp: the compiler returned %zu bytes", len);
  *n_insns = len / sizeof(struct sock_filter);
  *prog = (struct sock_filter *)steal_pointer(&data);
  return 0;
}

/* The kernel answers EFAULT for a supported flag with a NULL program, EINVAL otherwise. */
static bool kernel_has_flag(unsigned int flag) {
  return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flag, NULL) < 0 && errno == EFAULT;
}

static const char *const flag_names[] = {
    [1] = "SECCOMP_FILTER_FLAG_LOG", [2] = "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    [5] = "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"};

int bivy_seccomp_prepare(json_t *seccomp, const char *cache_dir, struct bivy_seccomp **out, bivy_error_t *err) {
  *out = NULL;
  if (seccomp == NULL || json_is_null(seccomp)) return 0;
  struct bivy_scmp_profile prof;
  int r = bivy_scmp_parse(seccomp, &prof, err);
  if (r < 0) {
    bivy_scmp_profile_clear(&prof);
    return r;
  }
  /* an allow-everything profile filters nothing: skip the filter (and its per-syscall cost) */
  if (prof.default_action == SCMP_ACT_ALLOW && prof.n_rules == 0 && prof.flags == 0) {
    bivy_scmp_profile_clear(&prof);
    return 0;
  }
  struct bivy_seccomp *s = calloc(1, sizeof *s);
  if (s == NULL) {
    bivy_scmp_profile_clear(&prof);
    return bivy_error(err, ENOMEM, "linux.seccomp");
  }
  s->notify = prof.notify;
  for (unsigned bit = 0; bit < sizeof flag_names / sizeof flag_names[0]; bit++) {
    unsigned int flag = 1u << bit, probe = flag;
    if (!(prof.flags & flag)) continue;
    if (flag == SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV) {
      /* only meaningful (and only accepted by the kernel) together with a listener */
      if (!s->notify) continue;
      probe |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
    }
    if (kernel_has_flag(probe)) s->flags |= flag;
    else fprintf(stderr, "bivy: warning: seccomp: %s not supported by this kernel, ignored\n", flag_names[bit]);
  }
  if ((prof.listener_path && (s->listener_path = strdup(prof.listener_path)) == NULL) ||
      (prof.listener_metadata && (s->listener_metadata = strdup(prof.listener_metadata)) == NULL)) {
    bivy_scmp_profile_clear(&prof);
    bivy_seccomp_free(s);
    return bivy_error(err, ENOMEM, "linux.seccomp");
  }

  /* canonical text: key order and spacing do not change the cache key */
  _cleanup_free_ char *canon = json_dumps(seccomp, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
  size_t canon_len = canon ? strlen(canon) : 0;
  if (canon && cache_dir && bivy_scmp_cache_load(cache_dir, canon, canon_len, &s->prog, &s->n_insns) == 1) {
    s->from_cache = true;
  } else {
    r = bivy_scmp_compile_guarded(&prof, compile_timeout_ms(), &s->prog, &s->n_insns, err);
    if (r < 0) {
      bivy_scmp_profile_clear(&prof);
      bivy_seccomp_free(s);
      return r;
    }
    if (canon && cache_dir) {
      _cleanup_error_ bivy_error_t cerr = NULL;
      /* the cache only saves time: a read-only or foreign directory must not stop a start */
      (void)bivy_scmp_cache_store(cache_dir, canon, canon_len, s->prog, s->n_insns, &cerr);
    }
  }
  bivy_scmp_profile_clear(&prof);
  *out = s;
  return 0;
}

int bivy_seccomp_install(struct bivy_seccomp *s, int *notify_fd, bivy_error_t *err) {
  *notify_fd = -1;
  if (s == NULL) return 0;
  struct sock_fprog fprog = {.len = (unsigned short)s->n_insns, .filter = s->prog};
  unsigned int flags = s->flags;
  /* the listener fd is created atomically with the filter, so no syscall escapes it */
  if (s->notify) flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
  long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &fprog);
  if (r < 0) {
    if (errno == EACCES)
      return bivy_error(err, EACCES, "load seccomp filter: needs process.noNewPrivileges or CAP_SYS_ADMIN");
    return bivy_error_errno(err, "load seccomp filter");
  }
  if (s->notify) *notify_fd = (int)r; /* the kernel creates it O_CLOEXEC */
  return 0;
}

const char *bivy_seccomp_listener_path(const struct bivy_seccomp *s) { return s ? s->listener_path : NULL; }
const char *bivy_seccomp_listener_metadata(const struct bivy_seccomp *s) {
  return s ? s->listener_metadata : NULL;
}
bool bivy_seccomp_has_notify(const struct bivy_seccomp *s) { return s && s->notify; }
bool bivy_seccomp_from_cache(const struct bivy_seccomp *s) { return s && s->from_cache; }
size_t bivy_seccomp_program_size(const struct bivy_seccomp *s) { return s ? s->n_insns : 0; }

int bivy_seccomp_send_listener(const struct bivy_seccomp *s, int notify_fd, const char *state_json, pid_t pid,
                               bivy_error_t *err) {
  if (s == NULL || s->listener_path == NULL) return bivy_error(err, EINVAL, "seccomp listener: no listenerPath");
  const char *where = s->listener_path;
  json_error_t jerr;
  _cleanup_json_ json_t *state = json_loads(state_json ? state_json : "{}", 0, &jerr);
  if (state == NULL) return bivy_error(err, EINVAL, "seccomp listener %s: bad state JSON: %s", where, jerr.text);
  json_t *ver = json_object_get(state, "ociVersion");
  /* containerProcessState as the runtime spec defines it for listenerPath */
  _cleanup_json_ json_t *msg =
      json_pack("{s:s, s:[s], s:I, s:O}", "ociVersion", json_is_string(ver) ? json_string_value(ver) : "1.2.0",
                "fds", "seccompFd", "pid", (json_int_t)pid, "state", state);
  if (msg == NULL) return bivy_error(err, ENOMEM, "seccomp listener %s", where);
  if (s->listener_metadata) json_object_set_new(msg, "metadata", json_string(s->listener_metadata));
  _cleanup_free_ char *text = json_dumps(msg, JSON_COMPACT);
  if (text == NULL) return bivy_error(err, ENOMEM, "seccomp listener %s", where);

  _cleanup_close_ int sk = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sk < 0) return bivy_error_errno(err, "seccomp listener %s: socket", where);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(where) >= sizeof addr.sun_path) return bivy_error(err, ENAMETOOLONG, "seccomp listener %s", where);
  strcpy(addr.sun_path, where);
  if (connect(sk, (struct sockaddr *)&addr, sizeof addr) < 0)
    return bivy_error_errno(err, "seccomp listener %s: connect", where);
  struct iovec iov = {.iov_base = text, .iov_len = strlen(text)};
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } cm;
  memset(&cm, 0, sizeof cm);
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof cm.buf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &notify_fd, sizeof(int));
  ssize_t w;
  do w = sendmsg(sk, &mh, MSG_NOSIGNAL);
  while (w < 0 && errno == EINTR);
  if (w < 0) return bivy_error_errno(err, "seccomp listener %s: send", where);
  if ((size_t)w != iov.iov_len) return bivy_error(err, EIO, "seccomp listener %s: short send", where);
  return 0;
}

void bivy_seccomp_free(struct bivy_seccomp *s) {
  if (s == NULL) return;
  free(s->prog);
  free(s->listener_path);
  free(s->listener_metadata);
  free(s);
}
