/* Capabilities (libcap): exactly the configured sets, nothing wider.
 *
 * Order in bivy_apply_user_and_caps (process.c): bounding set dropped first (while we still
 * hold CAP_SETPCAP), then the uid/gid change with PR_SET_KEEPCAPS, then
 * inheritable/permitted/effective in one capset, then ambient. */
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/capability.h>
#include <sys/prctl.h>

#include "runtime/cleanup.h"
#include "runtime/linux.h"
#include "runtime/caps-internal.h"

static const char *const cap_names[] = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
};
#define N_CAP_NAMES ((int)(sizeof(cap_names) / sizeof(cap_names[0])))

const char *bivy_cap_name(int cap) {
  if (cap < 0 || cap >= N_CAP_NAMES) return NULL;
  return cap_names[cap];
}

int bivy_cap_from_name(const char *name) {
  if (name == NULL) return -EINVAL;
  const char *n = strncasecmp(name, "CAP_", 4) == 0 ? name + 4 : name;
  for (int i = 0; i < N_CAP_NAMES; i++)
    if (strcasecmp(n, cap_names[i] + 4) == 0) return i;
  return -EINVAL;
}

static void cap_label(int cap, char *buf, size_t len) {
  const char *n = bivy_cap_name(cap);
  if (n) snprintf(buf, len, "%s", n);
  else snprintf(buf, len, "capability %d", cap);
}

int bivy_caps_check_available(const struct bivy_process *p, bivy_error_t *err) {
  if (p == NULL || !p->has_caps) return 0;
  const struct {
    const char *name;
    uint64_t set;
  } sets[] = {{"bounding", p->caps.bounding},
              {"effective", p->caps.effective},
              {"permitted", p->caps.permitted},
              {"inheritable", p->caps.inheritable},
              {"ambient", p->caps.ambient}};
  for (size_t s = 0; s < sizeof(sets) / sizeof(sets[0]); s++) {
    for (int cap = 0; cap < 64; cap++) {
      if (!(sets[s].set & (1ull << cap))) continue;
      char label[64];
      cap_label(cap, label, sizeof(label));
      if (!CAP_IS_SUPPORTED(cap))
        return bivy_error(err, EPERM, "process.capabilities.%s: %s is not supported by this kernel", sets[s].name,
                          label);
      /* the runtime cannot hand out what its own bounding set lacks */
      if (cap_get_bound((cap_value_t)cap) != 1)
        return bivy_error(err, EPERM, "process.capabilities.%s: %s is not available to the runtime", sets[s].name,
                          label);
    }
  }
  return 0;
}

int bivy_caps_drop_bounding(const struct bivy_process *p, bivy_error_t *err) {
  uint64_t keep = p->has_caps ? p->caps.bounding : 0;
  int max = (int)cap_max_bits();
  for (int cap = 0; cap < max; cap++) {
    if (cap < 64 && (keep & (1ull << cap))) continue;
    /* drop without asking first (one prctl per capability, not two): dropping one that is
     * already gone succeeds; a failure counts only if the capability is still there */
    if (prctl(PR_CAPBSET_DROP, (unsigned long)cap, 0, 0, 0) < 0 && cap_get_bound((cap_value_t)cap) == 1) {
      char label[64];
      cap_label(cap, label, sizeof(label));
      return bivy_error_errno(err, "process.capabilities.bounding: drop %s", label);
    }
  }
  return 0;
}

int bivy_caps_apply_sets(const struct bivy_process *p, bivy_error_t *err) {
  const struct bivy_capset none = {0};
  const struct bivy_capset *cs = p->has_caps ? &p->caps : &none;
  cap_t c = cap_init(); /* all clear: inheritable is never wider than configured */
  if (c == NULL) return bivy_error_errno(err, "process.capabilities");
  int max = (int)cap_max_bits();
  for (int cap = 0; cap < max && cap < 64; cap++) {
    cap_value_t v = (cap_value_t)cap;
    if ((cs->effective & (1ull << cap)) && cap_set_flag(c, CAP_EFFECTIVE, 1, &v, CAP_SET) < 0) goto fail;
    if ((cs->permitted & (1ull << cap)) && cap_set_flag(c, CAP_PERMITTED, 1, &v, CAP_SET) < 0) goto fail;
    if ((cs->inheritable & (1ull << cap)) && cap_set_flag(c, CAP_INHERITABLE, 1, &v, CAP_SET) < 0) goto fail;
  }
  if (cap_set_proc(c) < 0) {
    int saved = errno;
    cap_free(c);
    return bivy_error(err, saved, "process.capabilities: set effective/permitted/inheritable");
  }
  cap_free(c);
  /* ambient: start empty, raise only what is both permitted and inheritable (the kernel's
   * rule; anything else is skipped as runc does) */
  /* one call (libcap's cap_reset_ambient checks each capability first) */
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    return bivy_error_errno(err, "process.capabilities.ambient: reset");
  for (int cap = 0; cap < max && cap < 64; cap++) {
    uint64_t bit = 1ull << cap;
    if (!(cs->ambient & bit) || !(cs->permitted & bit) || !(cs->inheritable & bit)) continue;
    if (cap_set_ambient((cap_value_t)cap, CAP_SET) < 0) {
      char label[64];
      cap_label(cap, label, sizeof(label));
      return bivy_error_errno(err, "process.capabilities.ambient: raise %s", label);
    }
  }
  return 0;
fail:
  cap_free(c);
  return bivy_error_errno(err, "process.capabilities");
}
