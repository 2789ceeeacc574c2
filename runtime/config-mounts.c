/* config.json mounts[]: options -> MS_* flags, propagation and filesystem data. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#include "runtime/cleanup.h"
#include "runtime/config-internal.h"

#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 256
#endif

enum opt_kind { OPT_SET, OPT_CLEAR, OPT_PROPAGATION, OPT_BIND, OPT_RBIND, OPT_REC_SET, OPT_REC_CLEAR, OPT_IDMAP, OPT_IGNORE };

struct mount_opt {
  const char *name;
  enum opt_kind kind;
  unsigned long flag;
};

/* Options that map to mount(2) flags; anything else is filesystem data. */
static const struct mount_opt mount_opts[] = {
    {"defaults", OPT_IGNORE, 0},
    {"ro", OPT_SET, MS_RDONLY},
    {"rw", OPT_CLEAR, MS_RDONLY},
    {"nosuid", OPT_SET, MS_NOSUID},
    {"suid", OPT_CLEAR, MS_NOSUID},
    {"nodev", OPT_SET, MS_NODEV},
    {"dev", OPT_CLEAR, MS_NODEV},
    {"noexec", OPT_SET, MS_NOEXEC},
    {"exec", OPT_CLEAR, MS_NOEXEC},
    {"sync", OPT_SET, MS_SYNCHRONOUS},
    {"async", OPT_CLEAR, MS_SYNCHRONOUS},
    {"dirsync", OPT_SET, MS_DIRSYNC},
    {"remount", OPT_SET, MS_REMOUNT},
    {"mand", OPT_SET, MS_MANDLOCK},
    {"nomand", OPT_CLEAR, MS_MANDLOCK},
    {"atime", OPT_CLEAR, MS_NOATIME},
    {"noatime", OPT_SET, MS_NOATIME},
    {"diratime", OPT_CLEAR, MS_NODIRATIME},
    {"nodiratime", OPT_SET, MS_NODIRATIME},
    {"relatime", OPT_SET, MS_RELATIME},
    {"norelatime", OPT_CLEAR, MS_RELATIME},
    {"strictatime", OPT_SET, MS_STRICTATIME},
    {"nostrictatime", OPT_CLEAR, MS_STRICTATIME},
    {"lazytime", OPT_SET, MS_LAZYTIME},
    {"nolazytime", OPT_CLEAR, MS_LAZYTIME},
    {"silent", OPT_SET, MS_SILENT},
    {"loud", OPT_CLEAR, MS_SILENT},
    {"nosymfollow", OPT_SET, MS_NOSYMFOLLOW},
    {"symfollow", OPT_CLEAR, MS_NOSYMFOLLOW},
    {"bind", OPT_BIND, MS_BIND},
    {"rbind", OPT_RBIND, MS_BIND | MS_REC},
    {"private", OPT_PROPAGATION, MS_PRIVATE},
    {"rprivate", OPT_PROPAGATION, MS_PRIVATE | MS_REC},
    {"shared", OPT_PROPAGATION, MS_SHARED},
    {"rshared", OPT_PROPAGATION, MS_SHARED | MS_REC},
    {"slave", OPT_PROPAGATION, MS_SLAVE},
    {"rslave", OPT_PROPAGATION, MS_SLAVE | MS_REC},
    {"unbindable", OPT_PROPAGATION, MS_UNBINDABLE},
    {"runbindable", OPT_PROPAGATION, MS_UNBINDABLE | MS_REC},
    /* recursive attributes, applied with mount_setattr(AT_RECURSIVE) by the rootfs code */
    {"rro", OPT_REC_SET, MOUNT_ATTR_RDONLY},
    {"rrw", OPT_REC_CLEAR, MOUNT_ATTR_RDONLY},
    {"rnosuid", OPT_REC_SET, MOUNT_ATTR_NOSUID},
    {"rsuid", OPT_REC_CLEAR, MOUNT_ATTR_NOSUID},
    {"rnodev", OPT_REC_SET, MOUNT_ATTR_NODEV},
    {"rdev", OPT_REC_CLEAR, MOUNT_ATTR_NODEV},
    {"rnoexec", OPT_REC_SET, MOUNT_ATTR_NOEXEC},
    {"rexec", OPT_REC_CLEAR, MOUNT_ATTR_NOEXEC},
    {"rnodiratime", OPT_REC_SET, MOUNT_ATTR_NODIRATIME},
    {"rdiratime", OPT_REC_CLEAR, MOUNT_ATTR_NODIRATIME},
    {"rrelatime", OPT_REC_SET, MOUNT_ATTR_RELATIME},
    {"rnorelatime", OPT_REC_CLEAR, MOUNT_ATTR_RELATIME},
    {"rnoatime", OPT_REC_SET, MOUNT_ATTR_NOATIME},
    {"ratime", OPT_REC_CLEAR, MOUNT_ATTR_NOATIME},
    {"rstrictatime", OPT_REC_SET, MOUNT_ATTR_STRICTATIME},
    {"rnostrictatime", OPT_REC_CLEAR, MOUNT_ATTR_STRICTATIME},
    {"rnosymfollow", OPT_REC_SET, MOUNT_ATTR_NOSYMFOLLOW},
    {"rsymfollow", OPT_REC_CLEAR, MOUNT_ATTR_NOSYMFOLLOW},
    {"idmap", OPT_IDMAP, 0},
    {"ridmap", OPT_IDMAP, 0},
};

static const struct mount_opt *find_opt(const char *name) {
  for (size_t i = 0; i < sizeof mount_opts / sizeof mount_opts[0]; i++)
    if (strcmp(mount_opts[i].name, name) == 0) return &mount_opts[i];
  return NULL;
}

const char *bivy_mount_option_name(size_t i) {
  /* "defaults" (index 0) is a no-op, not a feature; id-mapped mounts are not implemented */
  i++;
  if (i >= sizeof mount_opts / sizeof mount_opts[0] || mount_opts[i].kind == OPT_IDMAP) return NULL;
  return mount_opts[i].name;
}

void cfg_mount_clear(struct bivy_mount *m) {
  free(m->destination);
  free(m->type);
  free(m->source);
  cfg_strv_free(m->options);
  free(m->data);
  memset(m, 0, sizeof *m);
}

static int apply_options(struct bivy_mount *m, const struct jp *p, bivy_error_t *err) {
  if (m->options == NULL) return 0;
  size_t data_len = 0;
  for (size_t i = 0; m->options[i]; i++) {
    const char *o = m->options[i];
    if (*o == '\0') return cfg_fail(err, JP_IDX(p, i), 0, "empty mount option");
    const struct mount_opt *mo = find_opt(o);
    if (mo == NULL) {
      /* a comma inside one option would smuggle extra options into the data string */
      if (strchr(o, ',')) return cfg_fail(err, JP_IDX(p, i), 0, "mount option \"%s\" contains a comma", o);
      data_len += strlen(o) + 1;
      continue;
    }
    switch (mo->kind) {
      case OPT_SET:
        m->flags |= mo->flag;
        m->clear_flags &= ~mo->flag;
        break;
      case OPT_CLEAR:
        m->clear_flags |= mo->flag;
        m->flags &= ~mo->flag;
        break;
      case OPT_PROPAGATION: m->propagation = mo->flag; break;
      case OPT_BIND:
        m->bind = true;
        m->flags |= MS_BIND;
        break;
      case OPT_RBIND:
        m->rbind = true;
        m->flags |= MS_BIND | MS_REC;
        break;
      case OPT_REC_SET:
        if (mo->flag == MOUNT_ATTR_RELATIME || mo->flag == MOUNT_ATTR_NOATIME || mo->flag == MOUNT_ATTR_STRICTATIME) {
          /* one atime mode at a time: mount_setattr wants the whole field cleared */
          m->rec_attr_set = (m->rec_attr_set & ~(uint64_t)MOUNT_ATTR__ATIME) | mo->flag;
          m->rec_attr_clr |= MOUNT_ATTR__ATIME;
        } else {
          m->rec_attr_set |= mo->flag;
          m->rec_attr_clr &= ~(uint64_t)mo->flag;
        }
        break;
      case OPT_REC_CLEAR:
        if (mo->flag == MOUNT_ATTR_RELATIME || mo->flag == MOUNT_ATTR_NOATIME || mo->flag == MOUNT_ATTR_STRICTATIME) {
          m->rec_attr_set &= ~(uint64_t)mo->flag;
          m->rec_attr_clr |= MOUNT_ATTR__ATIME;
        } else {
          m->rec_attr_clr |= mo->flag;
          m->rec_attr_set &= ~(uint64_t)mo->flag;
        }
        break;
      case OPT_IDMAP: m->idmap = true; break;
      case OPT_IGNORE: break;
    }
  }
  if (data_len == 0) return 0;
  char *data = malloc(data_len);
  if (data == NULL) return cfg_fail(err, p, ENOMEM, "allocate");
  char *w = data;
  for (size_t i = 0; m->options[i]; i++) {
    if (find_opt(m->options[i])) continue;
    if (w != data) *w++ = ',';
    size_t l = strlen(m->options[i]);
    memcpy(w, m->options[i], l);
    w += l;
  }
  *w = '\0';
  m->data = data;
  return 0;
}

int cfg_parse_mount(json_t *j, const struct jp *p, struct bivy_mount *m, bivy_error_t *err) {
  int r = cfg_object(j, p, err);
  if (r < 0) return r;
  if ((r = cfg_abs_path(cfg_get(j, "destination"), JP_KEY(p, "destination"), true, &m->destination, err)) < 0)
    return r;
  if ((r = cfg_str(cfg_get(j, "type"), JP_KEY(p, "type"), false, &m->type, err)) < 0) return r;
  if ((r = cfg_str(cfg_get(j, "source"), JP_KEY(p, "source"), false, &m->source, err)) < 0) return r;
  const struct jp *po = JP_KEY(p, "options");
  if ((r = cfg_strv(cfg_get(j, "options"), po, false, false, &m->options, err)) < 0) return r;
  if ((r = apply_options(m, po, err)) < 0) return r;
  /* type "bind" means a bind mount even without the option (runc does the same) */
  if (m->type && strcmp(m->type, "bind") == 0 && !m->bind && !m->rbind) {
    m->bind = true;
    m->flags |= MS_BIND;
  }
  if ((m->bind || m->rbind) && (m->source == NULL || m->source[0] == '\0'))
    return cfg_fail(err, JP_KEY(p, "source"), 0, "required for a bind mount");
  return 0;
}
