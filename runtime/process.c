/* Process hardening in the container process: hostname, rlimits, user, groups, capabilities,
 * no_new_privs, umask. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/caps-internal.h"
#include "runtime/cleanup.h"
#include "runtime/linux.h"
#include "runtime/util.h"

int bivy_set_hostname(const struct bivy_config *c, bivy_error_t *err) {
  bool want = (c->hostname && *c->hostname) || (c->domainname && *c->domainname);
  if (!want) return 0;
  /* without a uts namespace this would rename the host */
  if (bivy_config_ns(c, BIVY_NS_UTS) == NULL)
    return bivy_error(err, EINVAL, "%s: requires a uts namespace in linux.namespaces",
                      c->hostname && *c->hostname ? "hostname" : "domainname");
  if (c->hostname && *c->hostname && sethostname(c->hostname, strlen(c->hostname)) < 0)
    return bivy_error_errno(err, "hostname \"%s\"", c->hostname);
  if (c->domainname && *c->domainname && setdomainname(c->domainname, strlen(c->domainname)) < 0)
    return bivy_error_errno(err, "domainname \"%s\"", c->domainname);
  return 0;
}

static const char *rlimit_name(int r) {
  switch (r) {
    case RLIMIT_CPU: return "RLIMIT_CPU";
    case RLIMIT_FSIZE: return "RLIMIT_FSIZE";
    case RLIMIT_DATA: return "RLIMIT_DATA";
    case RLIMIT_STACK: return "RLIMIT_STACK";
    case RLIMIT_CORE: return "RLIMIT_CORE";
    case RLIMIT_RSS: return "RLIMIT_RSS";
    case RLIMIT_NPROC: return "RLIMIT_NPROC";
    case RLIMIT_NOFILE: return "RLIMIT_NOFILE";
    case RLIMIT_MEMLOCK: return "RLIMIT_MEMLOCK";
    case RLIMIT_AS: return "RLIMIT_AS";
    case RLIMIT_LOCKS: return "RLIMIT_LOCKS";
    case RLIMIT_SIGPENDING: return "RLIMIT_SIGPENDING";
    case RLIMIT_MSGQUEUE: return "RLIMIT_MSGQUEUE";
    case RLIMIT_NICE: return "RLIMIT_NICE";
    case RLIMIT_RTPRIO: return "RLIMIT_RTPRIO";
    case RLIMIT_RTTIME: return "RLIMIT_RTTIME";
  }
  return "RLIMIT_?";
}

int bivy_apply_rlimits(const struct bivy_process *p, bivy_error_t *err) {
  for (size_t i = 0; i < p->n_rlimits; i++) {
    const struct bivy_rlimit *l = &p->rlimits[i];
    struct rlimit rl = {.rlim_cur = (rlim_t)l->soft, .rlim_max = (rlim_t)l->hard};
    if (setrlimit((__rlimit_resource_t)l->resource, &rl) < 0) {
      int saved = errno;
      return bivy_error(err, saved, "process.rlimits[%zu] %s soft=%llu hard=%llu%s", i, rlimit_name(l->resource),
                        (unsigned long long)l->soft, (unsigned long long)l->hard,
                        saved == EPERM ? " (raising a hard limit needs CAP_SYS_RESOURCE)" : "");
    }
  }
  return 0;
}

/* In a user namespace whose setgroups is "deny", setgroups(2) always fails: skip it then. */
static bool setgroups_denied(void) {
  _cleanup_close_ int fd = open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[16] = {0};
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  return n > 0 && strncmp(buf, "deny", 4) == 0;
}

int bivy_apply_user_and_caps(const struct bivy_process *p, bivy_error_t *err) {
  const struct bivy_user *u = &p->user;
  /* bounding first, while CAP_SETPCAP is still effective: nothing dropped can come back via exec */
  int r = bivy_caps_drop_bounding(p, err);
  if (r < 0) return r;
  /* keep the permitted set across the uid change; the configured sets are applied after it */
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) return bivy_error_errno(err, "prctl PR_SET_KEEPCAPS");
  /* supplementary groups exactly as configured: never inherit the runtime's own groups */
  if (setgroups(u->n_additional_gids, u->additional_gids) < 0) {
    if (!(errno == EPERM && setgroups_denied()))
      return bivy_error_errno(err, "process.user.additionalGids: setgroups");
    if (u->n_additional_gids > 0)
      return bivy_error(err, EPERM, "process.user.additionalGids: setgroups is denied in this user namespace");
  }
  if (setresgid(u->gid, u->gid, u->gid) < 0) return bivy_error_errno(err, "process.user.gid %u: setresgid", u->gid);
  if (setresuid(u->uid, u->uid, u->uid) < 0) return bivy_error_errno(err, "process.user.uid %u: setresuid", u->uid);
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) return bivy_error_errno(err, "prctl PR_SET_KEEPCAPS");
  r = bivy_caps_apply_sets(p, err);
  if (r < 0) return r;
  /* no_new_privs: setuid binaries and file caps cannot raise privileges after exec */
  if (p->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return bivy_error_errno(err, "process.noNewPrivileges");
  umask(u->has_umask ? (u->umask & 0777) : 0022); /* runc's default when unset */
  return 0;
}
