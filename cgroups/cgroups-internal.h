/* Private to cgroups/: the driver's data and the helpers shared by its files. */
#ifndef BIVY_CGROUPS_INTERNAL_H
#define BIVY_CGROUPS_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cgroups/cgroups.h"
#include "runtime/error.h"

#define BIVY_CGROUP_ROOT "/sys/fs/cgroup"
#define BIVY_CGROUP_MAX_HIER 12

/* Controllers as bivy sees them; on v2 "io" is blkio, "cpu" carries cpuacct's stats,
 * devices is an eBPF program and freezer is the core cgroup.freeze. */
enum bivy_ctrl {
  CG_CPU,
  CG_CPUACCT,
  CG_CPUSET,
  CG_MEMORY,
  CG_IO, /* v1: blkio */
  CG_PIDS,
  CG_DEVICES,
  CG_FREEZER,
  CG_HUGETLB,
  CG_CTRL_COUNT
};

struct cg_hier {
  char *dir;      /* absolute path of the container's cgroup in this hierarchy */
  int fd;         /* O_DIRECTORY fd of dir, -1 when gone */
  bool v2;        /* the cgroup2 hierarchy (unified host, or /sys/fs/cgroup/unified on hybrid) */
  uint32_t ctrls; /* bit (1u << enum bivy_ctrl) for controllers served here */
  int created;    /* number of trailing path components bivy created (leaf = 1) */
};

struct bivy_cgroup {
  enum bivy_cgroup_mode mode;
  char *path; /* normalised cgroup path, leading '/', e.g. "/bivy/ID" */
  struct cg_hier h[BIVY_CGROUP_MAX_HIER];
  size_t nh;
  int ctrl[CG_CTRL_COUNT]; /* index into h, -1 when the controller is not available */
  int v2;                  /* index of the cgroup2 hierarchy in h, -1 if none */
};

const char *bivy_cg_ctrl_name(enum bivy_ctrl c, bool v2);

/* An empty cgroup (no hierarchies, every controller -1); NULL when out of memory. */
struct bivy_cgroup *bivy_cg_new(void);
/* Fill cg->h with every hierarchy of the host (cg->mode and cg->path set), nothing created. */
int bivy_cg_discover(struct bivy_cgroup *cg, bivy_error_t *err);
/* Make cg->path in hierarchy h (parents too), enabling the controllers in needed on the way
 * (v2), and open it into h->fd; h->created counts the components made. */
int bivy_cg_make_hier(struct bivy_cgroup *cg, struct cg_hier *h, bool bivy_parent, uint32_t needed, bivy_error_t *err);

/* The dir fd serving controller c, or -1. */
static inline int cg_ctrl_fd(const struct bivy_cgroup *cg, enum bivy_ctrl c) {
  return cg->ctrl[c] >= 0 ? cg->h[cg->ctrl[c]].fd : -1;
}
static inline bool cg_ctrl_v2(const struct bivy_cgroup *cg, enum bivy_ctrl c) {
  return cg->ctrl[c] >= 0 && cg->h[cg->ctrl[c]].v2;
}

/* Normalise a linux.cgroupsPath (or the default from id) per the rule in cgroups.h.
 * Sets *bivy_parent when the first component is the shared "bivy" parent. */
int bivy_cg_normalise_path(const char *cgroups_path, const char *id, char **out, bool *bivy_parent,
                           bivy_error_t *err);

/* Small file helpers on a cgroup dir fd. Read strips the trailing newline. */
int bivy_cg_read(int dirfd, const char *file, char **out, bivy_error_t *err);
int bivy_cg_write(int dirfd, const char *file, const char *value, bivy_error_t *err);
int bivy_cg_read_u64(int dirfd, const char *file, uint64_t *out); /* "max" -> UINT64_MAX */
/* Value of "key N" line in a flat-keyed file (memory.events, cpu.stat ...). */
int bivy_cg_read_keyed(int dirfd, const char *file, const char *key, uint64_t *out);

/* A single planned write: file in the hierarchy of controller ctrl. */
struct bivy_cg_write {
  enum bivy_ctrl ctrl;
  char *file;
  char *value;
  char *field; /* the OCI field it came from, for errors ("linux.resources.memory.limit") */
  bool best_effort; /* skip silently when the file does not exist (runc/crun do) */
  bool unified;     /* from linux.resources.unified: the controller must be on v2 */
  char *alt_file;   /* tried when file does not exist (io.bfq.weight -> io.weight) */
  char *alt_value;
};

struct bivy_cg_plan {
  struct bivy_cg_write *w;
  size_t n;
};
void bivy_cg_plan_clear(struct bivy_cg_plan *p);

/* Translate OCI LinuxResources JSON into file writes; v2mask has bit (1u << ctrl) set for
 * controllers that live on cgroup v2 (v2 file names), v1 names otherwise. Pure: no system
 * calls. Errors name the field under `where` ("linux.resources"). Devices are not planned
 * here (see devices.c). */
int bivy_cg_translate(json_t *resources, uint32_t v2mask, const char *where, struct bivy_cg_plan *plan,
                      bivy_error_t *err);
uint32_t bivy_cg_v2mask(const struct bivy_cgroup *cg);
/* Perform one planned write; errors name the field and the file. */
int bivy_cg_write_one(struct bivy_cgroup *cg, const struct bivy_cg_write *w, bivy_error_t *err);

/* Apply resources to a freshly made cgroup (create path); errors name the field. */
int bivy_cg_apply_resources(struct bivy_cgroup *cg, json_t *resources, bivy_error_t *err);

/* Controllers (bitmask of enum bivy_ctrl) that the resources need. */
uint32_t bivy_cg_resources_needs(json_t *resources);

struct bivy_cg_dev_rule {
  bool allow;
  char type;            /* 'a', 'c', 'b' */
  int64_t major, minor; /* -1 = any */
  unsigned access;      /* bit 0 r, bit 1 w, bit 2 m */
};
/* Parse linux.resources.devices and append the default allow-list (as runc does: mknod of
 * anything, /dev/null zero full random urandom tty console ptmx pts/N net/tun). */
int bivy_cg_devices_parse(json_t *devices, struct bivy_cg_dev_rule **rules, size_t *n, bivy_error_t *err);
/* Build the BPF_PROG_TYPE_CGROUP_DEVICE program for rules (pure). Returns instruction count. */
struct bpf_insn;
int bivy_cg_devices_bpf(const struct bivy_cg_dev_rule *rules, size_t n, struct bpf_insn **out, bivy_error_t *err);


/* v2 devices: attach an eBPF device filter built from linux.resources.devices. */
int bivy_cg_devices_v2(struct bivy_cgroup *cg, json_t *devices, bivy_error_t *err);
/* v1 devices: write devices.deny / devices.allow. */
int bivy_cg_devices_v1(struct bivy_cgroup *cg, json_t *devices, bivy_error_t *err);

#endif
