/* Container networking for the org.bivy.net modes: the namespace to join (before clone),
 * and the setup/teardown of the container's network (after clone, before start). */
#include "netns/netns.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netns/netns-internal.h"
#include "runtime/cleanup.h"
#include "runtime/config.h"
#include "runtime/util.h"

static void nlsockp(struct nl_sock **s) {
  if (*s) bivy_nl_close(*s);
}
#define _cleanup_nlsock_ _cleanup_(nlsockp)

struct net_plan {
  bool active; /* an org.bivy.net annotation applies */
  struct bivy_net_mode mode;
  struct bivy_net_publish *pub;
  size_t n_pub;
  bool has_subnet;
  struct bivy_net_subnet subnet;
};

static void plan_clear(struct net_plan *p) {
  bivy_net_mode_clear(&p->mode);
  free(p->pub);
  p->pub = NULL;
}

static const char *annotation(const struct bivy_config *cfg, const char *key) {
  for (size_t i = 0; i < cfg->n_annotations; i++)
    if (cfg->annotations[i].key && strcmp(cfg->annotations[i].key, key) == 0) return cfg->annotations[i].value;
  return NULL;
}

static const struct bivy_namespace *net_ns(const struct bivy_config *cfg) {
  for (size_t i = 0; i < cfg->n_namespaces; i++)
    if (cfg->namespaces[i].type == BIVY_NS_NET) return &cfg->namespaces[i];
  return NULL;
}

static int plan_parse(const struct bivy_config *cfg, struct net_plan *p, bivy_error_t *err) {
  memset(p, 0, sizeof(*p));
  const char *mode = annotation(cfg, BIVY_NET_ANNOTATION);
  const char *publish = annotation(cfg, BIVY_PUBLISH_ANNOTATION);
  const char *subnet = annotation(cfg, BIVY_SUBNET_ANNOTATION);
  const struct bivy_namespace *ns = net_ns(cfg);
  if (mode == NULL) {
    if (publish || subnet)
      return bivy_error(err, EINVAL, "annotations.%s: needs annotations.%s=bridge[:NAME]",
                        publish ? BIVY_PUBLISH_ANNOTATION : BIVY_SUBNET_ANNOTATION, BIVY_NET_ANNOTATION);
    return 0;
  }
  /* the caller (podman/CNI) owns a namespace named in config.json: bivy stays out of it */
  if (ns && ns->path) return 0;
  int r = bivy_net_mode_parse(mode, &p->mode, err);
  if (r < 0) return r;
  p->active = true;
  if (p->mode.kind == BIVY_NET_HOST) {
    if (ns) return bivy_error(err, EINVAL, "annotations.%s: host mode, but linux.namespaces has a network namespace", BIVY_NET_ANNOTATION);
  } else if (ns == NULL) {
    return bivy_error(err, EINVAL, "annotations.%s: mode %s needs a network namespace in linux.namespaces",
                      BIVY_NET_ANNOTATION, bivy_net_kind_name(p->mode.kind));
  }
  if ((publish || subnet) && p->mode.kind != BIVY_NET_BRIDGE)
    return bivy_error(err, EINVAL, "annotations.%s: only for bridge networking (annotations.%s is \"%s\")",
                      publish ? BIVY_PUBLISH_ANNOTATION : BIVY_SUBNET_ANNOTATION, BIVY_NET_ANNOTATION, mode);
  if (publish) {
    r = bivy_net_publish_parse_list(publish, "annotations." BIVY_PUBLISH_ANNOTATION, &p->pub, &p->n_pub, err);
    if (r < 0) return r;
  }
  if (subnet) {
    r = bivy_net_subnet_parse(subnet, &p->subnet, err);
    if (r < 0) return bivy_error_wrap(err, "annotations.%s", BIVY_SUBNET_ANNOTATION);
    p->has_subnet = true;
  }
  return 0;
}

/* Start time (field 22 of /proc/PID/stat) to tell a live pid from a recycled one. */
static int pid_start_time(pid_t pid, unsigned long long *out) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  _cleanup_free_ char *buf = NULL;
  _cleanup_error_ bivy_error_t e = NULL;
  int r = bivy_read_file_at(AT_FDCWD, path, &buf, NULL, &e);
  if (r < 0) return r;
  char *p = strrchr(buf, ')');
  if (p == NULL) return -EINVAL;
  p++;
  for (int field = 3; field < 22; field++) {
    p = strchr(p + 1, ' ');
    if (p == NULL) return -EINVAL;
  }
  *out = strtoull(p + 1, NULL, 10);
  return 0;
}

static int container_ns_path(const char *root, const char *id, char **path, bivy_error_t *err) {
  _cleanup_free_ char *state = NULL;
  if (asprintf(&state, "%s/%s/state.json", root, id) < 0) return -ENOMEM;
  json_error_t je;
  _cleanup_json_ json_t *j = json_load_file(state, 0, &je);
  if (j == NULL) return bivy_error(err, ENOENT, "annotations.%s: container:%s: no such container", BIVY_NET_ANNOTATION, id);
  json_int_t pid = json_integer_value(json_object_get(j, "pid"));
  if (pid <= 0 || kill((pid_t)pid, 0) < 0)
    return bivy_error(err, ESRCH, "annotations.%s: container:%s: container is not running", BIVY_NET_ANNOTATION, id);
  json_t *start = json_object_get(j, "pid_start");
  unsigned long long now;
  if (json_is_integer(start) && (pid_start_time((pid_t)pid, &now) < 0 || now != (unsigned long long)json_integer_value(start)))
    return bivy_error(err, ESRCH, "annotations.%s: container:%s: container is not running (pid %lld was reused)",
                      BIVY_NET_ANNOTATION, id, (long long)pid);
  if (asprintf(path, "/proc/%lld/ns/net", (long long)pid) < 0) return -ENOMEM;
  return 0;
}

int bivy_net_ns_path(const char *state_root, const struct bivy_config *cfg, char **path, bivy_error_t *err) {
  *path = NULL;
  struct net_plan p __attribute__((cleanup(plan_clear)));
  int r = plan_parse(cfg, &p, err);
  if (r < 0 || !p.active) return r;
  if (p.mode.kind == BIVY_NET_CONTAINER) return container_ns_path(state_root, p.mode.arg, path, err);
  if (p.mode.kind != BIVY_NET_NS) return 0;
  _cleanup_close_ int fd = open(p.mode.arg, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return bivy_error_errno(err, "annotations.%s: ns:%s", BIVY_NET_ANNOTATION, p.mode.arg);
  /* joining anything but a network namespace file (a mount ns, a plain file) must not happen */
  if (ioctl(fd, NS_GET_NSTYPE) != CLONE_NEWNET)
    return bivy_error(err, EINVAL, "annotations.%s: ns:%s: not a network namespace", BIVY_NET_ANNOTATION, p.mode.arg);
  *path = strdup(p.mode.arg);
  return *path ? 0 : -ENOMEM;
}

/* ---------------------------------------------------------------- files for /etc */

int bivy_net_etc_files(const struct bivy_config *cfg, bool *hosts, bool *resolv, bivy_error_t *err) {
  *hosts = *resolv = false;
  const char *a = bivy_config_annotation(cfg, BIVY_NET_ANNOTATION);
  if (a == NULL) return 0;
  struct bivy_net_mode m = {0};
  int r = bivy_net_mode_parse(a, &m, err);
  if (r < 0) return r;
  *hosts = m.kind == BIVY_NET_NONE || m.kind == BIVY_NET_BRIDGE;
  *resolv = m.kind == BIVY_NET_BRIDGE;
  bivy_net_mode_clear(&m);
  return 0;
}

static int write_etc_files(const char *root, const char *id, const struct bivy_config *cfg, uint32_t ip, bool resolv,
                           json_t *state, bivy_error_t *err) {
  _cleanup_free_ char *hosts = NULL, *rpath = NULL, *text = NULL;
  if (asprintf(&hosts, "%s/%s/" BIVY_NET_HOSTS_FILE, root, id) < 0) return -ENOMEM;
  const char *name = cfg->hostname && *cfg->hostname ? cfg->hostname : id;
  char ipb[16];
  int n = ip ? asprintf(&text, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n",
                        bivy_net_ip_str(ip, ipb, sizeof ipb), name)
             : asprintf(&text, "127.0.0.1\tlocalhost %s\n::1\tlocalhost ip6-localhost ip6-loopback\n", name);
  if (n < 0) return -ENOMEM;
  int r = bivy_write_file_atomic(hosts, text, strlen(text), 0644, err);
  if (r < 0) return bivy_error_wrap(err, "container hosts file");
  json_object_set_new(state, "hosts", json_string(hosts));
  if (!resolv) return 0;

  if (asprintf(&rpath, "%s/%s/" BIVY_NET_RESOLV_FILE, root, id) < 0) return -ENOMEM;
  _cleanup_free_ char *host = NULL, *out = NULL;
  size_t len = 0;
  _cleanup_error_ bivy_error_t e = NULL;
  bivy_read_file_at(AT_FDCWD, "/etc/resolv.conf", &host, NULL, &e);
  FILE *f = open_memstream(&out, &len);
  if (f == NULL) return -ENOMEM;
  fprintf(f, "# written by bivy from the host's resolv.conf\n");
  int kept = 0;
  for (char *save = NULL, *line = host ? strtok_r(host, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
    char ns[64];
    if (sscanf(line, " nameserver %63s", ns) == 1) {
      /* a loopback resolver (systemd-resolved stub) is the host's, unreachable from the container */
      if (strncmp(ns, "127.", 4) == 0 || strcmp(ns, "::1") == 0) continue;
      fprintf(f, "nameserver %s\n", ns);
      kept++;
    } else if (strncmp(line, "search", 6) == 0 || strncmp(line, "options", 7) == 0) {
      fprintf(f, "%s\n", line);
    }
  }
  if (kept == 0) fprintf(f, "# no non-loopback nameserver on the host\n");
  if (fclose(f) != 0) return -ENOMEM;
  r = bivy_write_file_atomic(rpath, out, len, 0644, err);
  if (r < 0) return bivy_error_wrap(err, "container resolv.conf");
  json_object_set_new(state, "resolvConf", json_string(rpath));
  return 0;
}

static void remove_etc_files(json_t *state) {
  const char *h = json_string_value(json_object_get(state, "hosts"));
  const char *rc = json_string_value(json_object_get(state, "resolvConf"));
  if (h) unlink(h);
  if (rc) unlink(rc);
}

/* ---------------------------------------------------------------- setup / teardown */

static int open_ctr_netns(pid_t pid, int *out, bivy_error_t *err) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/ns/net", pid);
  _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return bivy_error_errno(err, "container network namespace %s", path);
  struct stat a, b;
  if (fstat(fd, &a) < 0 || stat("/proc/self/ns/net", &b) < 0) return bivy_error_errno(err, "stat %s", path);
  /* configuring "the container's" netns when it is ours would rewire the host */
  if (a.st_ino == b.st_ino && a.st_dev == b.st_dev)
    return bivy_error(err, EINVAL, "container process %d has no network namespace of its own; refusing to configure it", pid);
  *out = steal_fd(&fd);
  return 0;
}

static bool ip_forward_on(void) {
  _cleanup_free_ char *v = NULL;
  _cleanup_error_ bivy_error_t e = NULL;
  return bivy_read_file_at(AT_FDCWD, "/proc/sys/net/ipv4/ip_forward", &v, NULL, &e) == 0 && v[0] == '1';
}

/* Remove a network we defined in this (failed) call, when nothing else uses it. */
static void undo_network(const char *root, const struct bivy_net_network *net, bool store_created, bool bridge_created) {
  _cleanup_error_ bivy_error_t e = NULL;
  _cleanup_close_ int lock = bivy_net_store_lock(root, &e);
  if (lock < 0) return;
  _cleanup_json_ json_t *l = NULL;
  if (bivy_net_leases_load(root, net->name, &l, &e) < 0 || json_object_size(json_object_get(l, "leases")) > 0) return;
  if (bridge_created) {
    _cleanup_nlsock_ struct nl_sock *sk = NULL;
    bool existed;
    if (bivy_nl_open(&sk, &e) == 0) bivy_link_delete(sk, net->name, &existed, &e);
    bivy_nft_masq_del(&net->subnet, &e);
  }
  if (store_created) bivy_net_network_remove(root, net->name, &e);
}

static int setup_bridge(const char *root, const char *id, const struct bivy_config *cfg, struct net_plan *p, int nsfd,
                        json_t *st, bivy_error_t *err) {
  struct bivy_net_network net;
  bool store_created = false, bridge_created = false;
  uint32_t ip = 0;
  char ipb[16], gwb[16], sn[24], veth[IFNAMSIZ];
  _cleanup_nlsock_ struct nl_sock *sk = NULL;
  int r = bivy_nl_open(&sk, err);
  if (r < 0) return r;
  {
    _cleanup_close_ int lock = bivy_net_store_lock(root, err);
    if (lock < 0) return lock;
    r = bivy_net_network_ensure(root, p->mode.bridge, p->has_subnet ? &p->subnet : NULL, 0, &net, &store_created, err);
    if (r < 0) return r;
    if (store_created) {
      char desc[96];
      r = bivy_link_subnet_conflict(sk, &net.subnet, net.name, desc, sizeof desc, err);
      if (r > 0)
        r = bivy_error(err, EEXIST, "network \"%s\": subnet %s overlaps %s in this network namespace%s", net.name,
                       bivy_net_subnet_str(&net.subnet, sn, sizeof sn), desc,
                       p->has_subnet ? "" : "; choose one with annotations." BIVY_SUBNET_ANNOTATION);
    }
    if (r >= 0) r = bivy_link_bridge_ensure(sk, &net, &bridge_created, err);
    if (r >= 0 && (store_created || bridge_created)) r = bivy_nft_masq_add(&net.subnet, err);
    if (r >= 0) r = bivy_net_lease_acquire(root, &net, id, &ip, err);
    if (r < 0) {
      _cleanup_error_ bivy_error_t e = NULL;
      bool existed;
      if (bridge_created) bivy_link_delete(sk, net.name, &existed, &e), bivy_nft_masq_del(&net.subnet, &e);
      if (store_created) bivy_net_network_remove(root, net.name, &e);
      return r;
    }
  }
  /* from here on the teardown path undoes everything recorded in st */
  bivy_net_veth_name(ip, veth);
  json_object_set_new(st, "network", json_string(net.name));
  json_object_set_new(st, "bridge", json_string(net.name));
  json_object_set_new(st, "subnet", json_string(bivy_net_subnet_str(&net.subnet, sn, sizeof sn)));
  json_object_set_new(st, "ip", json_string(bivy_net_ip_str(ip, ipb, sizeof ipb)));
  json_object_set_new(st, "prefix", json_integer(net.subnet.prefix));
  json_object_set_new(st, "gateway", json_string(bivy_net_ip_str(net.gateway, gwb, sizeof gwb)));
  json_object_set_new(st, "veth", json_string(veth));
  uint8_t mac[6];
  char macs[18];
  bivy_net_mac_from_ip(ip, mac);
  snprintf(macs, sizeof macs, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
  json_object_set_new(st, "mac", json_string(macs));
  json_object_set_new(st, "mtu", json_integer(net.mtu));

  r = bivy_nft_publish(p->pub, p->n_pub, ip, err);
  if (r < 0) goto fail;
  json_t *pubs = json_array();
  for (size_t i = 0; i < p->n_pub; i++) {
    char a[16], buf[64];
    if (p->pub[i].any_addr) snprintf(buf, sizeof buf, "%u:%u/%s", p->pub[i].host_port, p->pub[i].ctr_port, bivy_net_proto_name(p->pub[i].proto));
    else snprintf(buf, sizeof buf, "%s:%u:%u/%s", bivy_net_ip_str(p->pub[i].host_addr, a, sizeof a), p->pub[i].host_port,
                  p->pub[i].ctr_port, bivy_net_proto_name(p->pub[i].proto));
    json_array_append_new(pubs, json_string(buf));
  }
  json_object_set_new(st, "publish", pubs);

  r = bivy_link_veth_create(sk, veth, net.name, nsfd, "eth0", mac, net.mtu, err);
  if (r < 0) goto fail;
  {
    _cleanup_nlsock_ struct nl_sock *insk = NULL;
    r = bivy_nl_open_in_ns(nsfd, &insk, err);
    if (r >= 0) r = bivy_link_configure_ns(insk, "eth0", ip, net.subnet.prefix, net.gateway, err);
    if (r < 0) goto fail;
  }
  r = write_etc_files(root, id, cfg, ip, true, st, err);
  if (r < 0) goto fail;
  /* bivy does not flip host sysctls behind the operator's back: it reports the state */
  json_object_set_new(st, "ipForward", json_boolean(ip_forward_on()));
  return 0;

fail:;
  _cleanup_error_ bivy_error_t e = NULL;
  bivy_net_teardown(root, id, st, &e);
  if (store_created || bridge_created) undo_network(root, &net, store_created, bridge_created);
  return r;
}

int bivy_net_setup(const char *state_root, const char *id, const struct bivy_config *cfg, pid_t pid,
                   json_t **net_state, bivy_error_t *err) {
  *net_state = NULL;
  struct net_plan p __attribute__((cleanup(plan_clear)));
  int r = plan_parse(cfg, &p, err);
  if (r < 0 || !p.active) return r;
  _cleanup_json_ json_t *st = json_pack("{s:s}", "mode", bivy_net_kind_name(p.mode.kind));
  if (st == NULL) return -ENOMEM;
  switch (p.mode.kind) {
    case BIVY_NET_HOST: break;
    case BIVY_NET_CONTAINER: json_object_set_new(st, "container", json_string(p.mode.arg)); break;
    case BIVY_NET_NS: json_object_set_new(st, "path", json_string(p.mode.arg)); break;
    case BIVY_NET_NONE:
    case BIVY_NET_BRIDGE: {
      _cleanup_close_ int nsfd = -1;
      r = open_ctr_netns(pid, &nsfd, err);
      if (r < 0) return r;
      if (p.mode.kind == BIVY_NET_BRIDGE) {
        r = setup_bridge(state_root, id, cfg, &p, nsfd, st, err);
        if (r < 0) return bivy_error_wrap(err, "network bridge:%s", p.mode.bridge);
        break;
      }
      _cleanup_nlsock_ struct nl_sock *insk = NULL;
      r = bivy_nl_open_in_ns(nsfd, &insk, err);
      if (r >= 0) r = bivy_link_configure_ns(insk, NULL, 0, 0, 0, err);
      if (r >= 0) r = write_etc_files(state_root, id, cfg, 0, false, st, err);
      if (r < 0) {
        remove_etc_files(st);
        return bivy_error_wrap(err, "network none");
      }
      break;
    }
  }
  *net_state = steal_pointer(&st);
  return 0;
}

/* Keep the first failure of a best-effort sequence in *err. */
static void keep_first(int r, int *ret, bivy_error_t *err, bivy_error_t *e) {
  if (r < 0 && *ret == 0) {
    *ret = r;
    bivy_error_release(err);
    *err = steal_pointer(e);
  }
  bivy_error_release(e);
}

int bivy_net_teardown(const char *state_root, const char *id, json_t *net_state, bivy_error_t *err) {
  if (net_state == NULL) return 0;
  remove_etc_files(net_state);
  const char *mode = json_string_value(json_object_get(net_state, "mode"));
  if (mode == NULL || strcmp(mode, "bridge") != 0) return 0;
  const char *network = json_string_value(json_object_get(net_state, "network"));
  const char *veth = json_string_value(json_object_get(net_state, "veth"));
  const char *ips = json_string_value(json_object_get(net_state, "ip"));
  uint32_t ip = 0;
  if (network == NULL || ips == NULL || bivy_net_ip_parse(ips, &ip) < 0)
    return bivy_error(err, EINVAL, "state: net: missing network or ip");
  int ret = 0, r;
  _cleanup_error_ bivy_error_t e = NULL;
  if (veth) {
    _cleanup_nlsock_ struct nl_sock *sk = NULL;
    bool existed;
    /* deleting the host end destroys the pair, also when the container netns lives on */
    r = bivy_nl_open(&sk, &e);
    if (r >= 0) r = bivy_link_delete(sk, veth, &existed, &e);
    keep_first(r, &ret, err, &e);
  }
  json_t *pubs = json_object_get(net_state, "publish");
  size_t i;
  json_t *v;
  json_array_foreach(pubs, i, v) {
    struct bivy_net_publish pp;
    if (!json_is_string(v) || bivy_net_publish_parse(json_string_value(v), "state: net.publish", &pp, &e) < 0) continue;
    r = bivy_nft_unpublish(&pp, 1, ip, &e);
    keep_first(r, &ret, err, &e);
  }
  _cleanup_close_ int lock = bivy_net_store_lock(state_root, &e);
  r = lock < 0 ? lock : bivy_net_lease_release(state_root, network, id, &e);
  keep_first(r, &ret, err, &e);
  if (ret < 0) return bivy_error_wrap(err, "network teardown of %s", id);
  return 0;
}
