/* bivyd layer 4 (cluster): etcd transport trust and the node's admission policy (see cluster-trust.h). */
#include "tools/bivyd/cluster-trust.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/util.h"
#include "tools/bivyd/conf.h"
#include "tools/bivyd/daemon-log.h"
#include "tools/bivyd/policy/instance-policy.h"
#include "tools/bivyd/policy/node-policy.h"
#include "tools/bivyd/policy/placement-policy.h"

static struct {
  struct bivy_node_policy *policy;
  const char *policy_file;
  bool insecure, tls, user;
} TR;

static int readable(const char *flag, const char *path, bivy_error_t *err) {
  if (path && access(path, R_OK) < 0) return bivy_error_errno(err, "%s %s", flag, path);
  return 0;
}

/* the password: from a file only root can read (never argv, which every user sees in /proc) */
static int read_password(const char *path, char **out, bivy_error_t *err) {
  _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return bivy_error_errno(err, "--etcd-password-file %s", path);
  struct stat st;
  if (fstat(fd, &st) < 0) return bivy_error_errno(err, "--etcd-password-file %s", path);
  if (!S_ISREG(st.st_mode)) return bivy_error_plain(err, EINVAL, "--etcd-password-file %s: not a regular file", path);
  if (st.st_mode & 077)
    return bivy_error_plain(err, EPERM, "--etcd-password-file %s: readable by group or others (mode %04o): chmod 600 it", path,
                      st.st_mode & 07777);
  char buf[1024];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  if (n < 0) return bivy_error_errno(err, "--etcd-password-file %s", path);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) n--;
  buf[n] = '\0';
  if (n == 0) return bivy_error_plain(err, EINVAL, "--etcd-password-file %s: empty", path);
  *out = strdup(buf);
  explicit_bzero(buf, sizeof buf);
  return *out ? 0 : bivy_error(err, ENOMEM, "--etcd-password-file");
}

int cluster_trust_config(const struct cluster_opts *o, struct etcd_auth *a, bivy_error_t *err) {
  *a = (struct etcd_auth){.cacert = o->cacert, .cert = o->cert, .key = o->key, .user = o->user};
  if (!o->cert != !o->key) return bivy_error_plain(err, EINVAL, "--etcd-cert and --etcd-key go together (a client certificate and its key)");
  int r;
  if ((r = readable("--etcd-cacert", o->cacert, err)) < 0 || (r = readable("--etcd-cert", o->cert, err)) < 0 ||
      (r = readable("--etcd-key", o->key, err)) < 0)
    return r;
  if (o->password_file && !o->user) return bivy_error_plain(err, EINVAL, "--etcd-password-file needs --etcd-user NAME");
  if (o->user && !o->password_file)
    return bivy_error_plain(err, EINVAL, "--etcd-user needs --etcd-password-file FILE (a password is never taken on the command line)");
  _cleanup_strv_ char **urls = NULL;
  if ((r = bivy_cl_urls_parse(o->urls, &urls, err)) < 0) return r;
  bool any_https = false;
  for (char **u = urls; *u; u++) {
    bool https = strncmp(*u, "https://", 8) == 0;
    any_https |= https;
    /* plain http off this host: anyone on the path reads every spec and can forge answers
     * (start anything, as root, on every node) */
    if (!https && !bivy_cl_url_loopback(*u) && !o->insecure)
      return bivy_error_plain(err, EPERM,
                        "--cluster: %s: plain http to a non-loopback address (specs and leases unencrypted, etcd not "
                        "authenticated); use https:// with --etcd-cacert/--etcd-cert/--etcd-key, or --insecure-cluster to accept it",
                        *u);
  }
  if ((o->cacert || o->cert) && !any_https)
    return bivy_error_plain(err, EINVAL, "%s: needs https:// URLs in --cluster", o->cacert ? "--etcd-cacert" : "--etcd-cert");
  if (o->policy_file && (r = bivy_node_policy_load(o->policy_file, &TR.policy, err)) < 0) return r;
  if (o->password_file && (r = read_password(o->password_file, &a->password, err)) < 0) return r;
  TR.policy_file = o->policy_file;
  TR.insecure = o->insecure;
  TR.tls = any_https;
  TR.user = o->user != NULL;
  return 0;
}

void cluster_trust_log(void) {
  if (TR.insecure) bivyd_log("cluster: insecure: --insecure-cluster accepts plain http to etcd off this host");
  bivyd_log("cluster: etcd over %s%s; %s%s", TR.tls ? "https" : "http", TR.user ? " with an etcd user" : "",
            TR.policy ? "admission policy " : "no --cluster-policy: this node runs any spec found in etcd",
            TR.policy ? TR.policy_file : "");
}

int cluster_admit(const char *name, json_t *spec, const char **rule, bivy_error_t *err) {
  *rule = NULL;
  if (TR.policy == NULL) return 0;
  _cleanup_json_ json_t *cfg = NULL;
  /* the config this node would run (a bundle's config.json is read here, on this node) */
  int r = bivy_sv_make_config(spec, name, D.cgroup_parent, &cfg, err);
  if (r < 0) {
    *rule = "spec";
    return -EPERM;
  }
  return bivy_node_policy_check(TR.policy, spec, cfg, rule, err);
}
