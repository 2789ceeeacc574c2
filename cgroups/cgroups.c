/* The cgroup driver: mode detection, hierarchy discovery, creation, entering, kill, freeze,
 * destroy and (de)serialisation. Resources live in resources.c, stats in stats.c.
 *
 * Speed: every per-container operation goes through directory fds (openat on the cgroup's
 * dir) with direct writes; libcgroup is used only to discover v1 mount points when the
 * conventional /sys/fs/cgroup/<controller> layout is absent (cgroup_init parses the mount
 * table, ~3 ms, so it stays off the fast path). */
#include "cgroups/cgroups.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libcgroup.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "cgroups/cgroups-internal.h"
#include "runtime/cleanup.h"
#include "runtime/util.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef CGROUP_SUPER_MAGIC
#define CGROUP_SUPER_MAGIC 0x27e0eb
#endif

static const char *const ctrl_v1[CG_CTRL_COUNT] = {"cpu",   "cpuacct", "cpuset",  "memory", "blkio",
                                                   "pids",  "devices", "freezer", "hugetlb"};
static const char *const ctrl_v2[CG_CTRL_COUNT] = {"cpu",  "cpu",     "cpuset",  "memory", "io",
                                                   "pids", "devices", "freezer", "hugetlb"};
/* names used in the state JSON */
static const char *const ctrl_json[CG_CTRL_COUNT] = {"cpu",  "cpuacct", "cpuset",  "memory", "io",
                                                     "pids", "devices", "freezer", "hugetlb"};

const char *bivy_cg_ctrl_name(enum bivy_ctrl c, bool v2) { return v2 ? ctrl_v2[c] : ctrl_v1[c]; }

enum bivy_cgroup_mode bivy_cgroup_mode(void) {
  static int cached = -1;
  if (cached >= 0) return (enum bivy_cgroup_mode)cached;
  struct statfs sf;
  enum bivy_cgroup_mode m = BIVY_CGROUP_LEGACY;
  if (statfs(BIVY_CGROUP_ROOT, &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC)
    m = BIVY_CGROUP_UNIFIED;
  else if (statfs(BIVY_CGROUP_ROOT "/unified", &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC)
    m = BIVY_CGROUP_HYBRID;
  cached = (int)m;
  return m;
}

const char *bivy_cgroup_mode_name(enum bivy_cgroup_mode m) {
  switch (m) {
    case BIVY_CGROUP_UNIFIED: return "unified";
    case BIVY_CGROUP_HYBRID: return "hybrid";
    case BIVY_CGROUP_LEGACY: return "legacy";
  }
  return "unknown";
}

/* ---- small file helpers ---- */

int bivy_cg_read(int dirfd, const char *file, char **out, bivy_error_t *err) {
  size_t len = 0;
  int r = bivy_read_file_at(dirfd, file, out, &len, err);
  if (r < 0) return r;
  while (len > 0 && ((*out)[len - 1] == '\n' || (*out)[len - 1] == ' ')) (*out)[--len] = '\0';
  return 0;
}

int bivy_cg_write(int dirfd, const char *file, const char *value, bivy_error_t *err) {
  return bivy_write_file_at(dirfd, file, value, strlen(value), err);
}

int bivy_cg_read_u64(int dirfd, const char *file, uint64_t *out) {
  _cleanup_error_ bivy_error_t e = NULL;
  _cleanup_free_ char *s = NULL;
  int r = bivy_cg_read(dirfd, file, &s, &e);
  if (r < 0) return r;
  if (strcmp(s, "max") == 0) {
    *out = UINT64_MAX;
    return 0;
  }
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s) return -EINVAL;
  *out = v;
  return 0;
}

int bivy_cg_read_keyed(int dirfd, const char *file, const char *key, uint64_t *out) {
  _cleanup_error_ bivy_error_t e = NULL;
  _cleanup_free_ char *s = NULL;
  int r = bivy_cg_read(dirfd, file, &s, &e);
  if (r < 0) return r;
  size_t kl = strlen(key);
  for (char *line = s; line && *line;) {
    char *nl = strchr(line, '\n');
    if (strncmp(line, key, kl) == 0 && line[kl] == ' ') {
      *out = strtoull(line + kl + 1, NULL, 10);
      return 0;
    }
    line = nl ? nl + 1 : NULL;
  }
  return -ENOENT;
}

/* ---- path rule ---- */

int bivy_cg_normalise_path(const char *cgroups_path, const char *id, char **out, bool *bivy_parent,
                           bivy_error_t *err) {
  const char *p = cgroups_path && *cgroups_path ? cgroups_path : id;
  if (p == NULL || *p == '\0') return bivy_error(err, 0, "linux.cgroupsPath: empty path and no container ID");
  bool absolute = p[0] == '/';
  /* a "slice:prefix:name" systemd path is not a cgroupfs path */
  if (!absolute && strchr(p, ':'))
    return bivy_error(err, 0, "linux.cgroupsPath: \"%s\" looks like a systemd path (slice:prefix:name); bivy manages cgroupfs paths", p);
  _cleanup_free_ char *copy = strdup(p);
  size_t cap = strlen(p) + 8;
  _cleanup_free_ char *res = malloc(cap);
  if (copy == NULL || res == NULL) return bivy_error(err, ENOMEM, "linux.cgroupsPath");
  strcpy(res, absolute ? "" : "/bivy");
  size_t ncomp = 0;
  char *save = NULL;
  for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
    /* no escaping the hierarchy or the bivy parent */
    if (strcmp(c, "..") == 0 || strcmp(c, ".") == 0)
      return bivy_error(err, 0, "linux.cgroupsPath: \"%s\": \".\" and \"..\" components are not allowed", p);
    strcat(res, "/");
    strcat(res, c);
    ncomp++;
  }
  if (ncomp == 0)
    return bivy_error(err, 0, "linux.cgroupsPath: \"%s\": the hierarchy root cannot be a container's cgroup", p);
  if (bivy_parent) *bivy_parent = !absolute;
  *out = steal_pointer(&res);
  return 0;
}

/* ---- discovery ---- */

static int add_hier(struct bivy_cgroup *cg, const char *mount, bool v2, bivy_error_t *err) {
  if (cg->nh >= BIVY_CGROUP_MAX_HIER) return bivy_error(err, 0, "too many cgroup hierarchies");
  struct cg_hier *h = &cg->h[cg->nh];
  if (asprintf(&h->dir, "%s%s", mount, cg->path) < 0) return bivy_error(err, ENOMEM, "cgroup path");
  h->fd = -1;
  h->v2 = v2;
  h->ctrls = 0;
  h->created = 0;
  if (v2) cg->v2 = (int)cg->nh;
  return (int)cg->nh++;
}

/* Whether /proc/cgroups lists controller name on a v1 hierarchy (its hierarchy ID is not 0).
 * Unreadable or unlisted: true, and libcgroup decides. */
static bool v1_mounted(const char *name) {
  static char *table;
  _cleanup_error_ bivy_error_t e = NULL;
  size_t len = 0;
  if (table == NULL && bivy_read_file_at(AT_FDCWD, "/proc/cgroups", &table, &len, &e) < 0) return true;
  size_t nl = strlen(name);
  for (const char *line = table; line && *line;) {
    unsigned hier = 0;
    if (strncmp(line, name, nl) == 0 && line[nl] == '\t' && sscanf(line + nl + 1, "%u", &hier) == 1) return hier != 0;
    line = strchr(line, '\n');
    if (line) line++;
  }
  return true;
}

/* Mount point of a v1 controller: the conventional /sys/fs/cgroup/NAME when it is a cgroup v1
 * mount, else what libcgroup finds in the mount table. */
static char *v1_mount(const char *name) {
  char buf[128];
  struct statfs sf;
  snprintf(buf, sizeof buf, BIVY_CGROUP_ROOT "/%s", name);
  if (statfs(buf, &sf) == 0 && sf.f_type == CGROUP_SUPER_MAGIC) return strdup(buf);
  /* a controller that /proc/cgroups puts on no v1 hierarchy (0: on cgroup2 or unmounted) has
   * no mount point to look for: spares libcgroup's mount-table parse (~2 ms) on every create */
  if (!v1_mounted(name)) return NULL;
  static int init = -1;
  if (init < 0) init = cgroup_init();
  if (init != 0) return NULL;
  char *mp = NULL;
  if (cgroup_get_subsys_mount_point(name, &mp) != 0) return NULL;
  if (statfs(mp, &sf) != 0 || sf.f_type != CGROUP_SUPER_MAGIC) { /* libcgroup also reports v2 */
    free(mp);
    return NULL;
  }
  return mp;
}

static bool word_in(const char *list, const char *word) {
  size_t wl = strlen(word);
  for (const char *p = list; p && *p;) {
    while (*p == ' ' || *p == '\n') p++;
    const char *e = p + strcspn(p, " \n");
    if ((size_t)(e - p) == wl && strncmp(p, word, wl) == 0) return true;
    p = e;
  }
  return false;
}

int bivy_cg_discover(struct bivy_cgroup *cg, bivy_error_t *err) {
  int r;
  if (cg->mode == BIVY_CGROUP_UNIFIED) {
    if ((r = add_hier(cg, BIVY_CGROUP_ROOT, true, err)) < 0) return r;
    for (int c = 0; c < CG_CTRL_COUNT; c++) cg->ctrl[c] = 0;
    cg->h[0].ctrls = (1u << CG_CTRL_COUNT) - 1;
    return 0;
  }
  dev_t devs[BIVY_CGROUP_MAX_HIER];
  for (int c = 0; c < CG_CTRL_COUNT; c++) {
    _cleanup_free_ char *mp = v1_mount(ctrl_v1[c]);
    if (mp == NULL) continue;
    struct stat st;
    if (stat(mp, &st) < 0) continue;
    int idx = -1;
    for (size_t i = 0; i < cg->nh; i++) /* co-mounted controllers share one hierarchy */
      if (!cg->h[i].v2 && devs[i] == st.st_dev) idx = (int)i;
    if (idx < 0) {
      if ((idx = add_hier(cg, mp, false, err)) < 0) return idx;
      devs[idx] = st.st_dev;
    }
    cg->ctrl[c] = idx;
    cg->h[idx].ctrls |= 1u << c;
  }
  if (cg->mode == BIVY_CGROUP_HYBRID) {
    int v2 = add_hier(cg, BIVY_CGROUP_ROOT "/unified", true, err);
    if (v2 < 0) return v2;
    _cleanup_error_ bivy_error_t e = NULL;
    _cleanup_free_ char *avail = NULL;
    _cleanup_close_ int rfd = open(BIVY_CGROUP_ROOT "/unified", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rfd >= 0) bivy_cg_read(rfd, "cgroup.controllers", &avail, &e);
    for (int c = 0; c < CG_CTRL_COUNT; c++) {
      bool core = c == CG_FREEZER; /* cgroup.freeze needs no controller */
      if (cg->ctrl[c] < 0 && (core || (avail && word_in(avail, ctrl_v2[c])))) {
        cg->ctrl[c] = v2;
        cg->h[v2].ctrls |= 1u << c;
      }
    }
  }
  return 0;
}

/* ---- creation ---- */

/* On v2, make controller c of the leaf usable: enable it in every ancestor's subtree_control,
 * but only where bivy owns the ancestor (created it, or the shared bivy parent). */
static int v2_enable(int dirfd, const char *dir, bool ours, uint32_t wanted, uint32_t needed, bivy_error_t *err) {
  _cleanup_free_ char *avail = NULL, *enabled = NULL;
  int r = bivy_cg_read(dirfd, "cgroup.controllers", &avail, err);
  if (r < 0) return bivy_error_wrap(err, "cgroup %s", dir);
  if ((r = bivy_cg_read(dirfd, "cgroup.subtree_control", &enabled, err)) < 0)
    return bivy_error_wrap(err, "cgroup %s", dir);
  for (int c = 0; c < CG_CTRL_COUNT; c++) {
    if (!(wanted & (1u << c)) || c == CG_CPUACCT || c == CG_DEVICES || c == CG_FREEZER) continue;
    const char *name = ctrl_v2[c];
    if (word_in(enabled, name)) continue;
    bool need = needed & (1u << c);
    if (!word_in(avail, name)) {
      if (need)
        return bivy_error(err, 0, "cgroup %s: controller %s is not available (cgroup.controllers: \"%s\")", dir,
                          name, avail);
      continue;
    }
    if (!ours) {
      /* never write to cgroups bivy did not create */
      if (need)
        return bivy_error(err, 0,
                          "cgroup %s: controller %s (needed by linux.resources) is not enabled in its "
                          "cgroup.subtree_control, and bivy does not modify cgroups it did not create",
                          dir, name);
      continue;
    }
    char buf[32];
    snprintf(buf, sizeof buf, "+%s", name);
    _cleanup_error_ bivy_error_t e = NULL;
    if (bivy_cg_write(dirfd, "cgroup.subtree_control", buf, &e) < 0 && need) {
      r = bivy_error(err, e->status, "cgroup %s: enable controller %s: %s", dir, name, e->msg);
      return r;
    }
  }
  return 0;
}

/* v1 cpuset: a new cgroup starts with empty cpus/mems and refuses tasks until they are set. */
static int cpuset_inherit(int parentfd, int fd, const char *dir, bivy_error_t *err) {
  static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
  for (size_t i = 0; i < 2; i++) {
    _cleanup_free_ char *cur = NULL, *par = NULL;
    int r = bivy_cg_read(fd, files[i], &cur, err);
    if (r < 0) return bivy_error_wrap(err, "cgroup %s", dir);
    if (*cur) continue;
    if ((r = bivy_cg_read(parentfd, files[i], &par, err)) < 0) return bivy_error_wrap(err, "cgroup %s parent", dir);
    if ((r = bivy_cg_write(fd, files[i], par, err)) < 0) return bivy_error_wrap(err, "cgroup %s", dir);
  }
  return 0;
}

int bivy_cg_make_hier(struct bivy_cgroup *cg, struct cg_hier *h, bool bivy_parent, uint32_t needed, bivy_error_t *err) {
  size_t mlen = strlen(h->dir) - strlen(cg->path);
  _cleanup_free_ char *mount = strndup(h->dir, mlen);
  _cleanup_free_ char *comps = strdup(cg->path + 1);
  if (mount == NULL || comps == NULL) return bivy_error(err, ENOMEM, "cgroup %s", h->dir);
  _cleanup_close_ int cur = open(mount, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cur < 0) return bivy_error_errno(err, "cgroup hierarchy %s", mount);
  size_t ncomp = 1;
  for (char *p = comps; *p; p++) ncomp += *p == '/';
  size_t depth = 0;
  char *save = NULL;
  for (char *c = strtok_r(comps, "/", &save); c; c = strtok_r(NULL, "/", &save), depth++) {
    bool leaf = depth + 1 == ncomp;
    /* the parent must hand the controllers down before the child can use them; the parent
     * is bivy's when bivy created it just now or it is the shared bivy parent */
    if (h->v2) {
      bool parent_ours = h->created > 0 || (bivy_parent && depth == 1);
      _cleanup_free_ char *pdir = strndup(h->dir, (size_t)(c - comps) + mlen);
      int r = pdir ? v2_enable(cur, pdir, parent_ours, h->ctrls, needed, err) : bivy_error(err, ENOMEM, "cgroup");
      if (r < 0) return r;
    }
    if (mkdirat(cur, c, 0755) == 0) {
      if (h->created == 0) h->created = (int)(ncomp - depth);
    } else if (errno != EEXIST) {
      return bivy_error_errno(err, "create cgroup %s", h->dir);
    } else if (leaf) {
      /* an existing cgroup belongs to someone else: do not take it over */
      return bivy_error(err, 0, "create cgroup %s: already exists", h->dir);
    }
    _cleanup_close_ int next = openat(cur, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) return bivy_error_errno(err, "open cgroup %s", h->dir);
    if (!h->v2 && (h->ctrls & (1u << CG_CPUSET))) {
      bool ours = h->created > 0 || (bivy_parent && depth == 0);
      /* at every level, not only the ones this process made: a parent another bivy made a
       * moment ago may not have its cpus/mems yet (parallel creates under one parent) */
      int r = cpuset_inherit(cur, next, h->dir, err);
      if (r < 0) return r;
      /* in bivy's own parents, let the kernel copy cpus/mems into new children: cheaper
       * than writing them (each cpuset write rebuilds scheduler domains) */
      if (ours && !leaf) {
        _cleanup_free_ char *cc = NULL;
        _cleanup_error_ bivy_error_t e = NULL;
        if (bivy_cg_read(next, "cgroup.clone_children", &cc, &e) == 0 && strcmp(cc, "0") == 0)
          bivy_cg_write(next, "cgroup.clone_children", "1", &e);
      }
    }
    bivy_closep(&cur);
    cur = steal_fd(&next);
  }
  h->fd = steal_fd(&cur);
  return 0;
}

/* After creation on v2: which controllers the leaf really has. */
static int v2_settle(struct bivy_cgroup *cg, bivy_error_t *err) {
  if (cg->v2 < 0) return 0;
  struct cg_hier *h = &cg->h[cg->v2];
  _cleanup_free_ char *avail = NULL;
  int r = bivy_cg_read(h->fd, "cgroup.controllers", &avail, err);
  if (r < 0) return bivy_error_wrap(err, "cgroup %s", h->dir);
  for (int c = 0; c < CG_CTRL_COUNT; c++) {
    if (cg->ctrl[c] != cg->v2) continue;
    const char *name = c == CG_CPUACCT ? "cpu" : ctrl_v2[c];
    if (c == CG_FREEZER || c == CG_DEVICES) continue; /* core / eBPF */
    if (!word_in(avail, name)) {
      cg->ctrl[c] = -1;
      h->ctrls &= ~(1u << c);
    }
  }
  return 0;
}

/* Controllers a container joins a v1 hierarchy for on a hybrid host. The cgroup2 tree serves
 * what every container needs without a controller (listing and killing its processes,
 * cgroup.freeze, cpu usage in cpu.stat, PSI), so a v1 hierarchy is joined only for what it
 * does for this container; each one skipped saves a mkdir (and its parents) and a cgroup
 * migration on every start:
 *   memory   always: the limit, the OOM counter and notification, memory statistics
 *   devices  always: the device access list (a security boundary on v1)
 *   pids     always: pids.current for statistics, and the limit
 *   cpu, cpuset, blkio  when linux.resources sets them, or when `update` first does
 *                       (bivy_cgroup_join moves the container in then)
 *   cpuacct, freezer    never: cpu.stat and cgroup.freeze of the cgroup2 tree do their job */
static uint32_t hybrid_joins(uint32_t needed) {
  return needed | 1u << CG_MEMORY | 1u << CG_DEVICES | 1u << CG_PIDS;
}

/* Drop the v1 hierarchies serving none of the controllers in keep (before anything is made). */
static void prune(struct bivy_cgroup *cg, uint32_t keep) {
  size_t n = 0;
  for (size_t i = 0; i < cg->nh; i++) {
    if (!cg->h[i].v2 && !(cg->h[i].ctrls & keep)) {
      free(cg->h[i].dir);
      continue;
    }
    cg->h[n++] = cg->h[i];
  }
  cg->nh = n;
  cg->v2 = -1;
  for (int c = 0; c < CG_CTRL_COUNT; c++) cg->ctrl[c] = -1;
  for (size_t i = 0; i < n; i++) {
    if (cg->h[i].v2) cg->v2 = (int)i;
    for (int c = 0; c < CG_CTRL_COUNT; c++)
      if (cg->h[i].ctrls & (1u << c)) cg->ctrl[c] = (int)i;
  }
  if (cg->v2 >= 0 && cg->ctrl[CG_FREEZER] < 0) { /* cgroup.freeze needs no controller */
    cg->ctrl[CG_FREEZER] = cg->v2;
    cg->h[cg->v2].ctrls |= 1u << CG_FREEZER;
  }
}

struct bivy_cgroup *bivy_cg_new(void) {
  struct bivy_cgroup *cg = calloc(1, sizeof *cg);
  if (cg == NULL) return NULL;
  cg->v2 = -1;
  for (int c = 0; c < CG_CTRL_COUNT; c++) cg->ctrl[c] = -1;
  return cg;
}

int bivy_cgroup_create(const char *cgroups_path, const char *id, json_t *resources, struct bivy_cgroup **out,
                       bivy_error_t *err) {
  _cleanup_cgroup_ struct bivy_cgroup *cg = bivy_cg_new();
  if (cg == NULL) return bivy_error(err, ENOMEM, "cgroup");
  cg->mode = bivy_cgroup_mode();
  bool bivy_parent = false;
  int r = bivy_cg_normalise_path(cgroups_path, id, &cg->path, &bivy_parent, err);
  if (r < 0) return r;
  if ((r = bivy_cg_discover(cg, err)) < 0) return r;
  uint32_t needed = bivy_cg_resources_needs(resources);
  if (cg->mode == BIVY_CGROUP_HYBRID && cg->v2 >= 0) prune(cg, hybrid_joins(needed));
  for (size_t i = 0; i < cg->nh && r >= 0; i++) {
    /* on hybrid the v2 tree only needs the controllers mapped to it */
    r = bivy_cg_make_hier(cg, &cg->h[i], bivy_parent, needed & cg->h[i].ctrls, err);
  }
  if (r >= 0) r = v2_settle(cg, err);
  if (r >= 0) r = bivy_cg_apply_resources(cg, resources, err);
  if (r < 0) {
    _cleanup_error_ bivy_error_t e2 = NULL;
    bivy_cgroup_destroy(cg, &e2); /* leave nothing behind */
    return r;
  }
  *out = steal_pointer(&cg);
  return 0;
}

int bivy_cgroup_clone_fd(struct bivy_cgroup *cg) {
  /* a pure v2 host puts the process in all of its limits at clone time; a hybrid one in its
   * cgroup2 twin at least (one migration fewer after the clone) */
  if (cg == NULL || cg->v2 < 0) return -1;
  return cg->h[cg->v2].fd;
}

int bivy_cgroup_enter(struct bivy_cgroup *cg, pid_t pid, bool cloned_into_v2, bivy_error_t *err) {
  char buf[32];
  snprintf(buf, sizeof buf, "%d", (int)pid);
  for (size_t i = 0; i < cg->nh; i++) {
    if (cg->h[i].fd < 0 || (cloned_into_v2 && (int)i == cg->v2)) continue;
    int r = bivy_cg_write(cg->h[i].fd, "cgroup.procs", buf, err);
    if (r < 0) return bivy_error_wrap(err, "enter cgroup %s", cg->h[i].dir);
  }
  return 0;
}

/* ---- state ---- */

json_t *bivy_cgroup_to_json(const struct bivy_cgroup *cg) {
  json_t *hs = json_array();
  for (size_t i = 0; i < cg->nh; i++) {
    json_t *ctrls = json_array();
    for (int c = 0; c < CG_CTRL_COUNT; c++)
      if (cg->h[i].ctrls & (1u << c)) json_array_append_new(ctrls, json_string(ctrl_json[c]));
    json_array_append_new(hs, json_pack("{s:s, s:b, s:o, s:i}", "dir", cg->h[i].dir, "v2", cg->h[i].v2,
                                        "controllers", ctrls, "created", cg->h[i].created));
  }
  return json_pack("{s:s, s:s, s:o}", "mode", bivy_cgroup_mode_name(cg->mode), "path", cg->path, "hierarchies", hs);
}

/* memory_only: open only the directory serving the memory controller */
static int from_json(json_t *j, bool memory_only, struct bivy_cgroup **out, bivy_error_t *err) {
  _cleanup_cgroup_ struct bivy_cgroup *cg = bivy_cg_new();
  if (cg == NULL) return bivy_error(err, ENOMEM, "cgroup");
  const char *mode = NULL, *path = NULL;
  json_t *hs = NULL;
  if (!json_is_object(j) || json_unpack(j, "{s:s, s:s, s:o}", "mode", &mode, "path", &path, "hierarchies", &hs) < 0 ||
      !json_is_array(hs))
    return bivy_error(err, 0, "state: cgroup: malformed");
  cg->mode = strcmp(mode, "unified") == 0 ? BIVY_CGROUP_UNIFIED
             : strcmp(mode, "hybrid") == 0 ? BIVY_CGROUP_HYBRID
                                           : BIVY_CGROUP_LEGACY;
  if ((cg->path = strdup(path)) == NULL) return bivy_error(err, ENOMEM, "cgroup");
  size_t i;
  json_t *hj;
  json_array_foreach(hs, i, hj) {
    const char *dir = NULL;
    int v2 = 0, created = 0;
    json_t *ctrls = NULL;
    if (json_unpack(hj, "{s:s, s:b, s:o, s:i}", "dir", &dir, "v2", &v2, "controllers", &ctrls, "created", &created) < 0 ||
        cg->nh >= BIVY_CGROUP_MAX_HIER || strncmp(dir, BIVY_CGROUP_ROOT "/", strlen(BIVY_CGROUP_ROOT) + 1) != 0)
      return bivy_error(err, 0, "state: cgroup.hierarchies[%zu]: malformed", i);
    struct cg_hier *h = &cg->h[cg->nh];
    if ((h->dir = strdup(dir)) == NULL) return bivy_error(err, ENOMEM, "cgroup");
    h->v2 = v2;
    h->created = created;
    if (v2) cg->v2 = (int)cg->nh;
    size_t k;
    json_t *cj;
    json_array_foreach(ctrls, k, cj) {
      for (int c = 0; c < CG_CTRL_COUNT; c++)
        if (json_is_string(cj) && strcmp(json_string_value(cj), ctrl_json[c]) == 0) {
          h->ctrls |= 1u << c;
          cg->ctrl[c] = (int)cg->nh;
        }
    }
    h->fd = -1;
    if (!memory_only || (h->ctrls & (1u << CG_MEMORY))) {
      h->fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (h->fd < 0 && errno != ENOENT) return bivy_error_errno(err, "open cgroup %s", dir);
    }
    cg->nh++;
  }
  *out = steal_pointer(&cg);
  return 0;
}

int bivy_cgroup_from_json(json_t *j, struct bivy_cgroup **out, bivy_error_t *err) { return from_json(j, false, out, err); }

int bivy_cgroup_memory_from_json(json_t *j, struct bivy_cgroup **out, bivy_error_t *err) {
  return from_json(j, true, out, err);
}

/* ---- processes ---- */

static int pids_add(int dirfd, pid_t **pids, size_t *n, size_t *cap, int depth) {
  _cleanup_error_ bivy_error_t e = NULL;
  _cleanup_free_ char *s = NULL;
  if (bivy_cg_read(dirfd, "cgroup.procs", &s, &e) < 0) return 0; /* vanished */
  for (char *p = s; *p;) {
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p) break;
    if (*n == *cap) {
      size_t nc = *cap ? *cap * 2 : 16;
      pid_t *np = realloc(*pids, nc * sizeof *np);
      if (np == NULL) return -ENOMEM;
      *pids = np;
      *cap = nc;
    }
    (*pids)[(*n)++] = (pid_t)v;
    p = end;
    while (*p == '\n') p++;
  }
  if (depth > 32) return 0;
  int dfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return 0;
  _cleanup_closedir_ DIR *d = fdopendir(dfd);
  if (d == NULL) {
    close(dfd);
    return 0;
  }
  struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_type != DT_DIR || de->d_name[0] == '.') continue;
    _cleanup_close_ int sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) continue;
    int r = pids_add(sub, pids, n, cap, depth + 1);
    if (r < 0) return r;
  }
  return 0;
}

/* The hierarchy that lists the container's processes: v2 if present, else pids/freezer/any. */
static int proc_hier(struct bivy_cgroup *cg) {
  if (cg->v2 >= 0 && cg->h[cg->v2].fd >= 0) return cg->v2;
  int order[] = {CG_PIDS, CG_FREEZER, CG_MEMORY, CG_CPU};
  for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
    if (cg_ctrl_fd(cg, order[i]) >= 0) return cg->ctrl[order[i]];
  for (size_t i = 0; i < cg->nh; i++)
    if (cg->h[i].fd >= 0) return (int)i;
  return -1;
}

int bivy_cgroup_pids(struct bivy_cgroup *cg, pid_t **pids, size_t *n, bivy_error_t *err) {
  *pids = NULL;
  *n = 0;
  int hi = proc_hier(cg);
  if (hi < 0) return 0;
  size_t cap = 0;
  int r = pids_add(cg->h[hi].fd, pids, n, &cap, 0);
  if (r < 0) {
    free(*pids);
    *pids = NULL;
    *n = 0;
    return bivy_error(err, -r, "cgroup %s: list processes", cg->h[hi].dir);
  }
  return 0;
}

static int signal_all(struct bivy_cgroup *cg, int sig, size_t *count, bivy_error_t *err) {
  _cleanup_free_ pid_t *pids = NULL;
  size_t n = 0;
  int r = bivy_cgroup_pids(cg, &pids, &n, err);
  if (r < 0) return r;
  for (size_t i = 0; i < n; i++)
    if (pids[i] > 0) kill(pids[i], sig); /* gone already: fine */
  if (count) *count = n;
  return 0;
}

int bivy_cgroup_kill(struct bivy_cgroup *cg, int sig, bivy_error_t *err) {
  if (sig == SIGKILL && cg->v2 >= 0 && cg->h[cg->v2].fd >= 0) {
    /* cgroup.kill: atomic against forks racing the kill */
    _cleanup_error_ bivy_error_t e = NULL;
    if (bivy_cg_write(cg->h[cg->v2].fd, "cgroup.kill", "1", &e) == 0) return 0;
  }
  return signal_all(cg, sig, NULL, err);
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

int bivy_cgroup_is_frozen(struct bivy_cgroup *cg, bool *frozen, bivy_error_t *err) {
  int fd = cg_ctrl_fd(cg, CG_FREEZER);
  *frozen = false;
  if (fd < 0) return 0;
  _cleanup_free_ char *s = NULL;
  bool v2 = cg_ctrl_v2(cg, CG_FREEZER);
  int r = bivy_cg_read(fd, v2 ? "cgroup.freeze" : "freezer.state", &s, err);
  if (r < 0) return bivy_error_wrap(err, "cgroup %s", cg->h[cg->ctrl[CG_FREEZER]].dir);
  *frozen = v2 ? strcmp(s, "1") == 0 : strcmp(s, "THAWED") != 0;
  return 0;
}

int bivy_cgroup_freeze(struct bivy_cgroup *cg, bool frozen, bivy_error_t *err) {
  int fd = cg_ctrl_fd(cg, CG_FREEZER);
  if (fd < 0) return bivy_error(err, 0, "cgroup %s: no freezer available", cg->path);
  const char *dir = cg->h[cg->ctrl[CG_FREEZER]].dir;
  bool v2 = cg_ctrl_v2(cg, CG_FREEZER);
  int r = bivy_cg_write(fd, v2 ? "cgroup.freeze" : "freezer.state", v2 ? (frozen ? "1" : "0") : (frozen ? "FROZEN" : "THAWED"), err);
  if (r < 0) return bivy_error_wrap(err, "cgroup %s: %s", dir, frozen ? "freeze" : "thaw");
  /* wait until the kernel reports the state reached (bounded: 10 s) */
  for (int i = 0; i < 10000; i++) {
    _cleanup_free_ char *s = NULL;
    if (v2) {
      uint64_t f = 0;
      if (bivy_cg_read_keyed(fd, "cgroup.events", "frozen", &f) < 0 || (f == 1) == frozen) return 0;
    } else {
      _cleanup_error_ bivy_error_t e = NULL;
      if (bivy_cg_read(fd, "freezer.state", &s, &e) < 0) return 0;
      if (strcmp(s, frozen ? "FROZEN" : "THAWED") == 0) return 0;
      if (frozen && i % 100 == 99) bivy_cg_write(fd, "freezer.state", "FROZEN", &e); /* nudge */
    }
    sleep_ms(1);
  }
  if (frozen) {
    _cleanup_error_ bivy_error_t e = NULL;
    bivy_cg_write(fd, v2 ? "cgroup.freeze" : "freezer.state", v2 ? "0" : "THAWED", &e);
  }
  return bivy_error(err, ETIMEDOUT, "cgroup %s: %s did not complete", dir, frozen ? "freeze" : "thaw");
}

static bool cg_empty(struct bivy_cgroup *cg) {
  _cleanup_error_ bivy_error_t e = NULL;
  _cleanup_free_ pid_t *pids = NULL;
  size_t n = 0;
  if (cg->v2 >= 0 && cg->h[cg->v2].fd >= 0) {
    uint64_t pop = 1;
    if (bivy_cg_read_keyed(cg->h[cg->v2].fd, "cgroup.events", "populated", &pop) == 0) return pop == 0;
  }
  if (bivy_cgroup_pids(cg, &pids, &n, &e) < 0) return true;
  return n == 0;
}

/* Kill everything in the cgroup and wait until it is empty (bounded: 10 s). */
static int kill_all(struct bivy_cgroup *cg, bivy_error_t *err) {
  int ffd = cg_ctrl_fd(cg, CG_FREEZER);
  bool v1_freezer = ffd >= 0 && !cg_ctrl_v2(cg, CG_FREEZER);
  for (int i = 0; i < 10000; i++) {
    if (cg_empty(cg)) return 0;
    if (i % 50 == 0) {
      _cleanup_error_ bivy_error_t e = NULL;
      bool can_kill = cg->v2 >= 0 && cg->h[cg->v2].fd >= 0;
      /* v1: freeze first so nothing forks between listing and killing */
      if (!can_kill && v1_freezer) bivy_cg_write(ffd, "freezer.state", "FROZEN", &e);
      bivy_cgroup_kill(cg, SIGKILL, &e);
      /* a frozen task only dies once thawed */
      if (v1_freezer) bivy_cg_write(ffd, "freezer.state", "THAWED", &e);
      if (cg->v2 >= 0 && cg->h[cg->v2].fd >= 0) bivy_cg_write(cg->h[cg->v2].fd, "cgroup.freeze", "0", &e);
    }
    sleep_ms(1);
  }
  return bivy_error(err, EBUSY, "cgroup %s: processes remain after SIGKILL", cg->path);
}

int bivy_cgroup_destroy(struct bivy_cgroup *cg, bivy_error_t *err) {
  if (cg == NULL) return 0;
  int r = kill_all(cg, err);
  if (r < 0) return r;
  int ret = 0;
  for (size_t i = 0; i < cg->nh; i++) {
    struct cg_hier *h = &cg->h[i];
    bivy_closep(&h->fd);
    if (h->created <= 0) continue;
    /* rmdir can race the last exits: retry EBUSY briefly */
    int rr = -1;
    for (int k = 0; k < 2000; k++) {
      rr = rmdir(h->dir);
      if (rr == 0 || errno != EBUSY) break;
      sleep_ms(1);
    }
    if (rr < 0 && errno != ENOENT) {
      if (ret == 0) ret = bivy_error_errno(err, "remove cgroup %s", h->dir);
      continue;
    }
    /* ancestors bivy created go too when empty (a sibling keeps them busy: fine) */
    _cleanup_free_ char *p = strdup(h->dir);
    for (int k = 1; p && k < h->created; k++) {
      char *slash = strrchr(p, '/');
      if (slash == NULL || slash == p) break;
      *slash = '\0';
      if (rmdir(p) < 0) break;
    }
    h->created = 0;
  }
  return ret;
}

void bivy_cgroup_free(struct bivy_cgroup *cg) {
  if (cg == NULL) return;
  for (size_t i = 0; i < cg->nh; i++) {
    bivy_closep(&cg->h[i].fd);
    free(cg->h[i].dir);
  }
  free(cg->path);
  free(cg);
}

const char *bivy_cgroup_dir(const struct bivy_cgroup *cg) {
  if (cg->v2 >= 0 && cg->mode == BIVY_CGROUP_UNIFIED) return cg->h[cg->v2].dir;
  for (int c = CG_MEMORY; c >= 0; c--) /* memory, then cpuset/cpu on v1 */
    if (cg->ctrl[c] >= 0) return cg->h[cg->ctrl[c]].dir;
  return cg->nh ? cg->h[0].dir : cg->path;
}

bool bivy_cgroup_on_v2(const struct bivy_cgroup *cg, const char *controller) {
  for (int c = 0; c < CG_CTRL_COUNT; c++)
    if (strcmp(controller, ctrl_json[c]) == 0 || strcmp(controller, ctrl_v1[c]) == 0)
      return cg_ctrl_v2(cg, (enum bivy_ctrl)c) || (cg->ctrl[c] < 0 && cg->mode == BIVY_CGROUP_UNIFIED);
  return false;
}
