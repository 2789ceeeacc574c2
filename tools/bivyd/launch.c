/* bivyd layer 3 (supervision): an instance's containers: bundle, create, start, delete,
 * warm spares (see launch.h). */
#include "tools/bivyd/launch.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/container.h"
#include "runtime/state.h"
#include "runtime/util.h"
#include "tools/bivyd/conf.h"
#include "tools/bivyd/daemon-log.h"
#include "tools/bivyd/event-stream.h"
#include "tools/bivyd/instance.h"
#include "tools/bivyd/logfile.h"

void launch_delete_cid(const char *cid) {
  _cleanup_error_ bivy_error_t err = NULL;
  if (bivy_container_delete(D.root, cid, true, &err) < 0 && bivy_error_code(&err) != -ENOENT && D.debug)
    bivyd_log("%s: delete: %s", cid, err->msg);
}

void launch_cleanup(struct bivyd_inst *in) { launch_delete_cid(in->cid); }

const char *launch_other_cid(const char *name, const char *cid, char *buf, size_t len) {
  if (strcmp(cid, name) == 0) snprintf(buf, len, "%s.w", name);
  else snprintf(buf, len, "%s", name);
  return buf;
}

void launch_read_ip(struct bivyd_inst *in, json_t *st) {
  in->ip[0] = '\0';
  const char *ip = json_string_value(json_object_get(json_object_get(st, "net"), "ip"));
  if (ip) snprintf(in->ip, sizeof in->ip, "%s", ip);
}

static int write_bundle(struct bivyd_inst *in, const char *cid, char **dir_out, bivy_error_t *err) {
  _cleanup_json_ json_t *cfg = NULL;
  int r = bivy_sv_make_config(in->spec, cid, D.cgroup_parent, &cfg, err);
  if (r < 0) return r;
  _cleanup_free_ char *dir = inst_path("bundles", cid, NULL);
  _cleanup_free_ char *file = inst_path("bundles", cid, "/config.json");
  _cleanup_free_ char *txt = json_dumps(cfg, JSON_COMPACT);
  if (dir == NULL || file == NULL || txt == NULL) return bivy_error(err, ENOMEM, "bundle");
  if ((r = bivy_mkdir_p(dir, 0700, err)) < 0) return r;
  if ((r = bivy_write_file_atomic(file, txt, strlen(txt), 0600, err)) < 0) return r;
  *dir_out = steal_pointer(&dir);
  return 0;
}

int launch_create(struct bivyd_inst *in, const char *cid, pid_t *pid, int *pidfd, bivy_error_t *err) {
  _cleanup_free_ char *bundle = NULL;
  int r = write_bundle(in, cid, &bundle, err);
  if (r < 0) return r;
  if ((r = logs_open(in, err)) < 0) return r;
  /* a leftover container of the same name (a crash, a reboot with a persistent root) */
  launch_delete_cid(cid);
  int stdio[3] = {D.devnull, in->log_fd, in->log_fd};
  struct bivy_create_opts o = {.root = D.root, .id = cid, .bundle = bundle, .stdio = stdio,
                               .debug = D.debug ? bivyd_debug : NULL};
  r = bivy_container_create(&o, pid, pidfd, err);
  /* the init has its copy: ours would cost an fd per instance */
  close(in->log_fd);
  in->log_fd = -1;
  return r;
}

int launch_start(struct bivyd_inst *in, const char *cid, bivy_error_t *err) {
  (void)in;
  return bivy_container_start(D.root, cid, err);
}

void launch_drop_spare(struct bivyd_inst *in) {
  if (in->spare_pidfd < 0) return;
  syscall(SYS_pidfd_send_signal, in->spare_pidfd, SIGKILL, NULL, 0);
  siginfo_t si;
  waitid(P_PIDFD, (id_t)in->spare_pidfd, &si, WEXITED);
  close(in->spare_pidfd);
  in->spare_pidfd = -1;
  char other[sizeof in->cid];
  launch_delete_cid(launch_other_cid(in->name, in->cid, other, sizeof other));
}

void launch_prepare_spare(struct bivyd_inst *in) {
  if (!in->warm || in->spare_pidfd >= 0) return;
  char other[sizeof in->cid];
  launch_other_cid(in->name, in->cid, other, sizeof other);
  _cleanup_error_ bivy_error_t err = NULL;
  int fd = -1;
  if (launch_create(in, other, &in->spare_pid, &fd, &err) < 0) {
    bivyd_event(in->name, "spare-failed", json_pack("{s:s}", "error", err && err->msg ? err->msg : "create"));
    return;
  }
  in->spare_pidfd = fd;
}

int launch_start_spare(struct bivyd_inst *in, pid_t *pid, int *pidfd) {
  if (in->spare_pidfd < 0) return -ENOENT;
  char other[sizeof in->cid];
  launch_other_cid(in->name, in->cid, other, sizeof other);
  _cleanup_error_ bivy_error_t err = NULL;
  if (bivy_container_start(D.root, other, &err) < 0) {
    bivyd_log("%s: spare %s did not start (%s): creating anew", in->name, other, err->msg);
    launch_drop_spare(in);
    return -EIO;
  }
  *pid = in->spare_pid;
  *pidfd = in->spare_pidfd;
  in->spare_pidfd = -1;
  snprintf(in->cid, sizeof in->cid, "%s", other);
  return 0;
}
