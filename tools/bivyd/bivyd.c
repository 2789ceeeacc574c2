/* bivyd layer 5 (control API): the bivy supervisor's main: options, start-up (state lock,
 * module registration, adoption or joining the cluster), the loop, shutdown. One process,
 * one thread, one epoll loop; the layers and their files are drawn in HACKING.md. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/util.h"
#include "tools/bivyd/autoscaler.h"
#include "tools/bivyd/clients.h"
#include "tools/bivyd/cluster-sync.h"
#include "tools/bivyd/cluster.h"
#include "tools/bivyd/conf.h"
#include "tools/bivyd/daemon-log.h"
#include "tools/bivyd/follow.h"
#include "tools/bivyd/health.h"
#include "tools/bivyd/instance.h"
#include "tools/bivyd/logfile.h"
#include "tools/bivyd/loop.h"
#include "tools/bivyd/policy/instance-policy.h"
#include "tools/bivyd/readopt.h"
#include "tools/bivyd/server.h"
#include "tools/bivyd/service-notify.h"
#include "tools/bivyd/supervise.h"
#include "tools/bivyd/verbs.h"

#ifndef BIVY_VERSION
#define BIVY_VERSION "0.1.0"
#endif

static int lock_fd = -1;

static const char usage[] =
    "Usage: bivyd [OPTIONS]\n"
    "\n"
    "Supervise bivy instances: start them, watch them through pidfds in one epoll loop,\n"
    "restart them by policy (no, on-failure[:N], always, unless-stopped) with back-off,\n"
    "detect OOM kills and failing health checks, capture their output into rotating log\n"
    "files, and keep the desired state on disk so that a restarted bivyd re-adopts the\n"
    "instances still running (no restart, no duplicate) and brings back the others.\n"
    "Clients talk to it with `bivy up/down/restart/ls/inspect/logs/resize/metrics/monitor`\n"
    "over a unix socket speaking line-delimited JSON (root only: mode 0600 + peer check).\n"
    "SIGTERM/SIGINT stop bivyd and leave the instances running.\n"
    "\n"
    "Options:\n"
    "  --root DIR            bivy state root for the containers (default /run/bivy)\n"
    "  --state-dir DIR       desired state, logs, generated bundles (default /var/lib/bivy)\n"
    "  --socket PATH         control socket (default /run/bivy/bivyd.sock)\n"
    "  --cgroup-parent PATH  cgroupsPath parent of instances without one (default bivyd:\n"
    "                        /bivy/bivyd/NAME; an absolute path is taken from the root)\n"
    "  --max-backoff D       longest restart back-off (default 30s; e.g. 500ms, 2m)\n"
    "  --log-max-size SIZE   rotate an instance's log at SIZE (default 1M; one old file kept)\n"
    "  --budget-memory SIZE  host budget: the memory limits of all instances together stay\n"
    "                        within SIZE (`up`, `resize` and autoscale grows that do not fit\n"
    "                        are refused; every instance then needs a memory limit)\n"
    "  --budget-cpus N       the same for CPU limits\n"
    "  --cluster URL[,URL]   cluster mode: desired instances, membership and ownership in\n"
    "                        etcd (v3 JSON gateway, e.g. http://127.0.0.1:2379); instances\n"
    "                        are placed on the nodes, adopted when a node's lease expires,\n"
    "                        and stopped here (fencing) when this node cannot renew its own\n"
    "  --node NAME           this node's name in the cluster (required with --cluster)\n"
    "  --node-cpus N         CPUs this node offers to placement (default: online CPUs)\n"
    "  --node-memory SIZE    memory this node offers (default: physical memory)\n"
    "  --lease-ttl D         membership lease TTL (default 3s, whole seconds)\n"
    "  --etcd-cacert FILE    CA certificate(s) that etcd's members must be signed by (https)\n"
    "  --etcd-cert FILE      this node's client certificate for etcd (mutual TLS), with\n"
    "  --etcd-key FILE       its private key\n"
    "  --etcd-user NAME      authenticate to etcd as NAME (etcd auth; its role decides the keys)\n"
    "  --etcd-password-file FILE  NAME's password (the file must be mode 0600 or stricter)\n"
    "  --insecure-cluster    accept plain http:// to an etcd that is not on loopback\n"
    "  --cluster-policy FILE what this node agrees to run (JSON: rootfs_prefixes,\n"
    "                        bundle_prefixes, host_bind_mounts, host_namespaces, devices,\n"
    "                        privileged, max_capabilities, max_memory, max_cpus, max_pids);\n"
    "                        an instance it refuses is left to other nodes (event refused)\n"
    "  --debug               log every request and timing to stderr\n"
    "  --version             print the version\n"
    "  -h, --help            this help\n";

static int setup(bivy_error_t *err) {
  int r;
  if ((r = bivy_mkdir_p(D.state_dir, 0700, err)) < 0) return r;
  _cleanup_free_ char *lock = NULL, *idir = NULL, *ldir = NULL, *bdir = NULL;
  if (asprintf(&lock, "%s/bivyd.lock", D.state_dir) < 0 || asprintf(&idir, "%s/instances", D.state_dir) < 0 ||
      asprintf(&ldir, "%s/logs", D.state_dir) < 0 || asprintf(&bdir, "%s/bundles", D.state_dir) < 0)
    return bivy_error(err, ENOMEM, "paths");
  if ((r = bivy_mkdir_p(idir, 0700, err)) < 0 || (r = bivy_mkdir_p(ldir, 0700, err)) < 0 ||
      (r = bivy_mkdir_p(bdir, 0700, err)) < 0)
    return r;
  lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0) return bivy_error_errno(err, "open %s", lock);
  /* one daemon per state dir: two would fight over the same instances */
  if (flock(lock_fd, LOCK_EX | LOCK_NB) < 0)
    return bivy_error(err, errno == EWOULDBLOCK ? EBUSY : errno, "--state-dir %s: another bivyd uses it", D.state_dir);
  D.devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (D.devnull < 0) return bivy_error_errno(err, "open /dev/null");
  /* bivy_container_exec (health probes) joins the instance's pid namespace for our
   * children: we return to our own after each probe */
  D.self_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
  if (D.self_pidns < 0) return bivy_error_errno(err, "open /proc/self/ns/pid");
  if ((r = loop_init(err)) < 0) return r;
  /* the modules: each registers its callbacks with the layers below */
  loop_idle_add(bivyd_clients_reap);
  loop_idle_add(insts_reap);
  logfile_init();
  health_init();
  as_init();
  follow_init();
  verbs_init();
  return 0;
}

int main(int argc, char **argv) {
  enum { O_ROOT = 256, O_STATE, O_SOCKET, O_CGP, O_BACKOFF, O_LOGMAX, O_DEBUG, O_VERSION, O_BMEM, O_BCPU,
         O_CLUSTER, O_NODE, O_NODE_CPUS, O_NODE_MEM, O_LEASE_TTL, O_CACERT, O_CERT, O_KEY, O_USER, O_PWFILE,
         O_INSECURE, O_POLICY };
  struct cluster_opts co = {0};
  static const struct option opts[] = {{"root", required_argument, NULL, O_ROOT},
                                       {"state-dir", required_argument, NULL, O_STATE},
                                       {"socket", required_argument, NULL, O_SOCKET},
                                       {"cgroup-parent", required_argument, NULL, O_CGP},
                                       {"max-backoff", required_argument, NULL, O_BACKOFF},
                                       {"log-max-size", required_argument, NULL, O_LOGMAX},
                                       {"debug", no_argument, NULL, O_DEBUG},
                                       {"budget-memory", required_argument, NULL, O_BMEM},
                                       {"budget-cpus", required_argument, NULL, O_BCPU},
                                       {"cluster", required_argument, NULL, O_CLUSTER},
                                       {"node", required_argument, NULL, O_NODE},
                                       {"node-cpus", required_argument, NULL, O_NODE_CPUS},
                                       {"node-memory", required_argument, NULL, O_NODE_MEM},
                                       {"lease-ttl", required_argument, NULL, O_LEASE_TTL},
                                       {"etcd-cacert", required_argument, NULL, O_CACERT},
                                       {"etcd-cert", required_argument, NULL, O_CERT},
                                       {"etcd-key", required_argument, NULL, O_KEY},
                                       {"etcd-user", required_argument, NULL, O_USER},
                                       {"etcd-password-file", required_argument, NULL, O_PWFILE},
                                       {"insecure-cluster", no_argument, NULL, O_INSECURE},
                                       {"cluster-policy", required_argument, NULL, O_POLICY},
                                       {"version", no_argument, NULL, O_VERSION},
                                       {"help", no_argument, NULL, 'h'},
                                       {0, 0, 0, 0}};
  int c;
  int64_t v;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
      case O_ROOT: D.root = optarg; break;
      case O_STATE: D.state_dir = optarg; break;
      case O_SOCKET: D.socket_path = optarg; break;
      case O_CGP:
        if (*optarg == '\0' || strstr(optarg, "..")) {
          fprintf(stderr, "bivyd: --cgroup-parent: invalid path \"%s\"\n", optarg);
          return 2;
        }
        D.cgroup_parent = optarg;
        break;
      case O_BACKOFF:
        if (bivy_parse_duration(optarg, &D.max_backoff_ms) < 0 || D.max_backoff_ms < BIVY_SV_BACKOFF_FIRST_MS) {
          fprintf(stderr, "bivyd: --max-backoff: invalid duration \"%s\" (at least 100ms)\n", optarg);
          return 2;
        }
        break;
      case O_LOGMAX:
        if (bivy_parse_size(optarg, &v) < 0 || v < 4096) {
          fprintf(stderr, "bivyd: --log-max-size: invalid size \"%s\" (at least 4k)\n", optarg);
          return 2;
        }
        D.log_max = (uint64_t)v;
        break;
      case O_DEBUG: D.debug = true; break;
      case O_BMEM:
        if (bivy_parse_size(optarg, &v) < 0 || v < 4 * 1024 * 1024) {
          fprintf(stderr, "bivyd: --budget-memory: invalid size \"%s\" (at least 4M)\n", optarg);
          return 2;
        }
        D.budget_mem = (uint64_t)v;
        break;
      case O_BCPU: {
        char *end;
        errno = 0;
        D.budget_cpus = strtod(optarg, &end);
        if (errno || *end || !(D.budget_cpus >= 0.01 && D.budget_cpus <= 4096)) {
          fprintf(stderr, "bivyd: --budget-cpus: invalid number of CPUs \"%s\" (0.01-4096)\n", optarg);
          return 2;
        }
        break;
      }
      case O_CLUSTER: co.urls = optarg; break;
      case O_NODE: co.node = optarg; break;
      case O_NODE_CPUS: co.cpus = optarg; break;
      case O_NODE_MEM: co.mem = optarg; break;
      case O_LEASE_TTL: co.ttl = optarg; break;
      case O_CACERT: co.cacert = optarg; break;
      case O_CERT: co.cert = optarg; break;
      case O_KEY: co.key = optarg; break;
      case O_USER: co.user = optarg; break;
      case O_PWFILE: co.password_file = optarg; break;
      case O_INSECURE: co.insecure = true; break;
      case O_POLICY: co.policy_file = optarg; break;
      case O_VERSION: printf("bivyd version %s\n", BIVY_VERSION); return 0;
      case 'h': fputs(usage, stdout); return 0;
      default: fprintf(stderr, "bivyd: see 'bivyd --help'\n"); return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "bivyd: unexpected argument \"%s\" (see 'bivyd --help')\n", argv[optind]);
    return 2;
  }
  if (co.urls || co.node || co.cpus || co.mem || co.ttl || co.cacert || co.cert || co.key || co.user ||
      co.password_file || co.insecure || co.policy_file) {
    _cleanup_error_ bivy_error_t cerr = NULL;
    if (co.urls == NULL) {
      fprintf(stderr, "bivyd: --node, --node-cpus, --node-memory, --lease-ttl, --etcd-*, --insecure-cluster and "
                      "--cluster-policy need --cluster URL\n");
      return 2;
    }
    if (cluster_config(&co, &cerr) < 0) {
      fprintf(stderr, "bivyd: %s\n", cerr->msg);
      return 2;
    }
  }
  /* our own session: the instances (which stay in it) must not get a terminal's hangup or
   * a shell's job-control signals, and must outlive us */
  setsid();
  /* fds 0-2 must exist, or /dev/null and log files would land there */
  for (int fd = 0; fd < 3; fd++)
    if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd) return 1;
  /* an instance holds a pidfd, an OOM fd and its cgroup dirs: lift the soft fd limit */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  _cleanup_error_ bivy_error_t err = NULL;
  if (setup(&err) < 0 || bivyd_server_open(&err) < 0) {
    fprintf(stderr, "bivyd: %s\n", err->msg);
    return 1;
  }
  if ((cluster_on() ? cluster_start(&err) : insts_load(&err)) < 0) {
    fprintf(stderr, "bivyd: %s\n", err->msg);
    unlink(D.socket_path);
    return 1;
  }
  if (cluster_on()) cluster_sync_init();
  bivyd_log("ready: socket %s, state %s, root %s, %zu instances", D.socket_path, D.state_dir, D.root, T.n_insts);
  service_notify("READY=1\nSTATUS=supervising");
  loop_run();
  service_notify("STOPPING=1");
  if (cluster_on()) cluster_shutdown();
  else bivyd_log("stopping (instances keep running; a new bivyd re-adopts them)");
  for (struct bivyd_inst *in = T.insts; in; in = in->next) sv_detach(in);
  unlink(D.socket_path);
  return 0;
}
