/* rootfs-run: a minimal runner for the rootfs/hardening functions of runtime/linux.h,
 * independent of the lifecycle code (for tests and debugging).
 *
 *   rootfs-run [--no-pivot] [--console-socket SOCK] BUNDLE
 *
 * Loads BUNDLE/config.json, checks capabilities, builds the plan, unshares the namespaces the
 * config asks for (user namespace included: maps written by the runner, setgroups denied; no
 * cgroups, no seccomp), forks the container process
 * (pid 1 of its pid ns) which runs: plan phase 0 -> createContainer hooks -> plan phase 1 ->
 * hostname -> terminal -> rlimits -> user+caps -> exec process.args. Exits with the
 * container's status (128+N for a signal); errors go to stderr as "rootfs-run: <msg>". */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/config.h"
#include "runtime/linux.h"

static int die(bivy_error_t *err, const char *what) {
  fprintf(stderr, "rootfs-run: %s%s%s\n", what, err && *err ? ": " : "", err && *err ? (*err)->msg : "");
  return 1;
}

static int child(struct bivy_config *c, struct bivy_plan *plan, int console_fd, int go_fd) {
  _cleanup_error_ bivy_error_t err = NULL;
  char go;
  /* wait for the runner to write our id maps; then become the namespace's root */
  if (read(go_fd, &go, 1) != 1) _exit(die(NULL, "runner went away"));
  close(go_fd);
  if (bivy_config_ns(c, BIVY_NS_USER) && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0))
    _exit(die(NULL, "become root in the user namespace"));
  if (bivy_plan_run(plan, c->root_path, 0, &err) < 0) _exit(die(&err, "rootfs phase 0"));
  if (bivy_hooks_run(c, BIVY_HOOK_CREATE_CONTAINER, "{\"ociVersion\":\"1.2.0\",\"id\":\"rootfs-run\",\"status\":\"creating\"}", &err) < 0)
    _exit(die(&err, "createContainer"));
  if (bivy_plan_run(plan, c->root_path, 1, &err) < 0) _exit(die(&err, "rootfs phase 1"));
  if (bivy_set_hostname(c, &err) < 0) _exit(die(&err, "hostname"));
  const struct bivy_process *p = &c->process;
  if (p->terminal) {
    int master = -1;
    if (console_fd < 0) _exit(die(NULL, "process.terminal needs --console-socket"));
    if (bivy_terminal_setup(p, &master, &err) < 0) _exit(die(&err, "terminal"));
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", console_fd);
    if (bivy_send_fd(path, master, &err) < 0) _exit(die(&err, "console socket"));
    close(master);
    close(console_fd);
  }
  if (bivy_apply_rlimits(p, &err) < 0) _exit(die(&err, "rlimits"));
  if (bivy_apply_user_and_caps(p, &err) < 0) _exit(die(&err, "user/caps"));
  if (p->cwd && chdir(p->cwd) < 0) _exit(die(NULL, "chdir process.cwd"));
  execvpe(p->args[0], p->args, p->env ? p->env : (char *[]){NULL});
  fprintf(stderr, "rootfs-run: exec %s: %s\n", p->args[0], strerror(errno));
  _exit(127);
}

static int write_map(pid_t pid, const char *file, const struct bivy_id_mapping *m, size_t n) {
  char path[64], buf[4096];
  size_t len = 0;
  for (size_t i = 0; i < n && len < sizeof(buf) - 64; i++)
    len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%u %u %u\n", m[i].container_id, m[i].host_id, m[i].size);
  snprintf(path, sizeof(path), "/proc/%d/%s", pid, file);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, buf, len) != (ssize_t)len) {
    fprintf(stderr, "rootfs-run: write %s: %s\n", path, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  close(fd);
  return 0;
}

static int write_maps(const struct bivy_config *c, pid_t pid) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/setgroups", pid);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, "deny", 4) != 4) {
    fprintf(stderr, "rootfs-run: write %s: %s\n", path, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  close(fd);
  if (write_map(pid, "uid_map", c->uid_mappings, c->n_uid_mappings) < 0) return -1;
  return write_map(pid, "gid_map", c->gid_mappings, c->n_gid_mappings);
}

int main(int argc, char **argv) {
  static const struct option opts[] = {{"no-pivot", no_argument, NULL, 'n'},
                                       {"console-socket", required_argument, NULL, 'c'},
                                       {0, 0, 0, 0}};
  bool no_pivot = false;
  const char *console = NULL;
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (o == 'n') no_pivot = true;
    else if (o == 'c') console = optarg;
    else return 2;
  }
  if (optind + 1 != argc) {
    fprintf(stderr, "usage: rootfs-run [--no-pivot] [--console-socket SOCK] BUNDLE\n");
    return 2;
  }
  _cleanup_error_ bivy_error_t err = NULL;
  _cleanup_config_ struct bivy_config *c = NULL;
  if (bivy_config_load(argv[optind], &c, &err) < 0) return die(&err, "config");
  if (!c->has_process) return die(NULL, "config has no process");
  if (bivy_caps_check_available(&c->process, &err) < 0) return die(&err, "capabilities");
  struct bivy_plan *plan = NULL;
  if (bivy_plan_build(c, no_pivot, &plan, &err) < 0) return die(&err, "plan");
  if (bivy_hooks_run(c, BIVY_HOOK_CREATE_RUNTIME, "{\"ociVersion\":\"1.2.0\",\"id\":\"rootfs-run\",\"status\":\"creating\"}", &err) < 0) {
    bivy_plan_free(plan);
    return die(&err, "createRuntime");
  }
  int console_fd = -1;
  if (console && (console_fd = open(console, O_PATH | O_CLOEXEC)) < 0) {
    bivy_plan_free(plan);
    return die(NULL, "open --console-socket");
  }
  int flags = CLONE_NEWNS;
  for (size_t i = 0; i < c->n_namespaces; i++) {
    if (c->namespaces[i].type == BIVY_NS_MNT) continue;
    if (c->namespaces[i].path) {
      bivy_plan_free(plan);
      return die(NULL, "namespace paths are not supported by rootfs-run");
    }
    flags |= bivy_ns_clone_flag(c->namespaces[i].type);
  }
  int go[2];
  if (pipe2(go, O_CLOEXEC) < 0) {
    bivy_plan_free(plan);
    return die(NULL, "pipe");
  }
  fflush(NULL);
  /* clone (fork-like, no stack) straight into the new namespaces: the runner itself stays in
   * the host's pid namespace (unshare(CLONE_NEWPID) would break LeakSanitizer's exit scan) */
  pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)flags | SIGCHLD, NULL, NULL, NULL, 0);
  if (pid < 0) {
    perror("rootfs-run: clone");
    bivy_plan_free(plan);
    return 1;
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(go[1]);
    return child(c, plan, console_fd, go[0]);
  }
  bivy_plan_free(plan);
  close(go[0]);
  if (bivy_config_ns(c, BIVY_NS_USER) && write_maps(c, pid) < 0) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return 1;
  }
  if (write(go[1], "g", 1) != 1) return die(NULL, "start child");
  close(go[1]);
  if (console_fd >= 0) close(console_fd);
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return 1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
