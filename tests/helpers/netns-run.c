/* Test helper standing in for the lifecycle code around netns/: fork a "container" process
 * into its own network namespace (or the one bivy_net_ns_path names), run bivy_net_setup on
 * it with a hand-made struct bivy_config, record ROOT/ID/state.json like `bivy create`, then
 * let it exec CMD; `down` kills it and runs bivy_net_teardown.
 *
 *   netns-run up ROOT ID [--net MODE] [--publish LIST] [--subnet CIDR] [--hostname NAME]
 *                        [--no-netns] [--log FILE] -- CMD [ARGS...]
 *   netns-run down ROOT ID
 *
 * `up` prints the "net" state JSON on stdout and the setup time on stderr. A failed `up`
 * leaves neither the process nor ROOT/ID behind. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netns/netns.h"
#include "runtime/cleanup.h"
#include "runtime/config.h"
#include "runtime/util.h"

static int die(bivy_error_t err, const char *what) {
  fprintf(stderr, "netns-run: %s%s%s\n", what, err && err->msg ? ": " : "", err && err->msg ? err->msg : "");
  return 1;
}

static int cmd_up(int argc, char **argv) {
  static const struct option opts[] = {{"net", required_argument, NULL, 'n'},   {"publish", required_argument, NULL, 'p'},
                                       {"subnet", required_argument, NULL, 's'}, {"hostname", required_argument, NULL, 'h'},
                                       {"no-netns", no_argument, NULL, 'N'},     {"log", required_argument, NULL, 'l'},
                                       {0, 0, 0, 0}};
  struct bivy_annotation ann[3];
  struct bivy_namespace ns = {.type = BIVY_NS_NET};
  struct bivy_config cfg = {.annotations = ann, .namespaces = &ns, .n_namespaces = 1};
  const char *log = "/dev/null";
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
      case 'n': ann[cfg.n_annotations++] = (struct bivy_annotation){(char *)BIVY_NET_ANNOTATION, optarg}; break;
      case 'p': ann[cfg.n_annotations++] = (struct bivy_annotation){(char *)BIVY_PUBLISH_ANNOTATION, optarg}; break;
      case 's': ann[cfg.n_annotations++] = (struct bivy_annotation){(char *)BIVY_SUBNET_ANNOTATION, optarg}; break;
      case 'h': cfg.hostname = optarg; break;
      case 'N': cfg.n_namespaces = 0; break;
      case 'l': log = optarg; break;
      default: return 2;
    }
  }
  if (argc - optind < 3) {
    fprintf(stderr, "usage: netns-run up ROOT ID [OPTIONS] -- CMD...\n");
    return 2;
  }
  const char *root = argv[optind], *id = argv[optind + 1];
  char **cmd = argv + optind + 2;
  for (size_t i = 0; i < cfg.n_annotations; i++)
    if (strcmp(ann[i].key, BIVY_NET_ANNOTATION) == 0 && strcmp(ann[i].value, "host") == 0) cfg.n_namespaces = 0;

  _cleanup_error_ bivy_error_t err = NULL;
  _cleanup_free_ char *join = NULL, *dir = NULL, *state = NULL;
  if (bivy_net_ns_path(root, &cfg, &join, &err) < 0) return die(err, "net");
  if (asprintf(&dir, "%s/%s", root, id) < 0 || asprintf(&state, "%s/state.json", dir) < 0) return 1;
  if (bivy_mkdir_p(root, 0700, &err) < 0) return die(err, "state root");
  if (mkdir(dir, 0700) < 0) return fprintf(stderr, "netns-run: %s: %s\n", dir, strerror(errno)), 1;

  int ready[2], go[2];
  if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0) return 1;
  pid_t pid = fork();
  if (pid < 0) return 1;
  if (pid == 0) {
    close(ready[0]);
    close(go[1]);
    setsid();
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC), out = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (in < 0 || out < 0) _exit(127);
    dup2(in, 0), dup2(out, 1), dup2(out, 2);
    if (join) {
      int fd = open(join, O_RDONLY | O_CLOEXEC);
      if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) _exit(126);
    } else if (cfg.n_namespaces && unshare(CLONE_NEWNET) < 0) {
      _exit(126);
    }
    char b = 'r';
    if (write(ready[1], &b, 1) != 1 || read(go[0], &b, 1) != 1) _exit(125);
    execvp(cmd[0], cmd);
    _exit(127);
  }
  close(ready[1]);
  close(go[0]);
  char b;
  json_t *net = NULL;
  int rc = 1;
  if (read(ready[0], &b, 1) != 1) {
    fprintf(stderr, "netns-run: the container process failed to start\n");
  } else {
    uint64_t t0 = bivy_now_ns();
    int r = bivy_net_setup(root, id, &cfg, pid, &net, &err);
    uint64_t t1 = bivy_now_ns();
    if (r < 0) {
      die(err, "setup");
    } else {
      fprintf(stderr, "netns-run: bivy_net_setup took %llu us\n", (unsigned long long)((t1 - t0) / 1000));
      _cleanup_json_ json_t *st = json_pack("{s:s, s:i, s:s, s:O?}", "id", id, "pid", (json_int_t)pid, "status", "running",
                                            "net", net);
      _cleanup_free_ char *text = st ? json_dumps(st, JSON_COMPACT) : NULL;
      if (text && bivy_write_file_atomic(state, text, strlen(text), 0600, &err) == 0) rc = 0;
      else die(err, "write state");
    }
  }
  if (rc != 0) {
    kill(pid, SIGKILL); /* our own child */
    waitpid(pid, NULL, 0);
    _cleanup_error_ bivy_error_t e2 = NULL;
    if (net) bivy_net_teardown(root, id, net, &e2);
    bivy_rm_rf(dir, &e2);
  } else {
    if (write(go[1], "g", 1) != 1) rc = 1;
    _cleanup_free_ char *text = net ? json_dumps(net, JSON_COMPACT) : strdup("null");
    printf("%s\n", text ? text : "null");
  }
  json_decref(net);
  return rc;
}

static int cmd_down(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: netns-run down ROOT ID\n");
    return 2;
  }
  const char *root = argv[2], *id = argv[3];
  _cleanup_free_ char *dir = NULL, *state = NULL;
  if (asprintf(&dir, "%s/%s", root, id) < 0 || asprintf(&state, "%s/state.json", dir) < 0) return 1;
  json_error_t je;
  _cleanup_json_ json_t *st = json_load_file(state, 0, &je);
  if (st == NULL) return fprintf(stderr, "netns-run: %s: %s\n", state, je.text), 1;
  json_int_t pid = json_integer_value(json_object_get(st, "pid"));
  if (pid > 0) kill((pid_t)pid, SIGKILL); /* the process this helper started for ID */
  _cleanup_error_ bivy_error_t err = NULL;
  uint64_t t0 = bivy_now_ns();
  if (bivy_net_teardown(root, id, json_object_get(st, "net"), &err) < 0) return die(err, "teardown");
  fprintf(stderr, "netns-run: bivy_net_teardown took %llu us\n", (unsigned long long)((bivy_now_ns() - t0) / 1000));
  if (bivy_rm_rf(dir, &err) < 0) return die(err, "remove state");
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "up") == 0) return cmd_up(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "down") == 0) return cmd_down(argc, argv);
  fprintf(stderr, "usage: netns-run up|down ROOT ID ...\n");
  return 2;
}
