/* The network store and IP address leases.
 *
 *   ROOT/net/.lock               flock: every read-modify-write of the store holds it
 *   ROOT/net/NAME/network.json   {"name", "bridge", "subnet", "gateway", "mtu"}
 *   ROOT/net/NAME/leases.json    {"leases": {IP: ID}, "previous": {ID: IP}}
 *
 * "previous" remembers the last address of a released ID so that a restarted instance gets
 * the same address back while it is still free. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "netns/netns-internal.h"
#include "runtime/cleanup.h"
#include "runtime/util.h"

int bivy_net_store_lock(const char *root, bivy_error_t *err) {
  _cleanup_free_ char *dir = NULL, *path = NULL;
  if (asprintf(&dir, "%s/net", root) < 0 || asprintf(&path, "%s/net/.lock", root) < 0) return -ENOMEM;
  int r = bivy_mkdir_p(dir, 0700, err);
  if (r < 0) return bivy_error_wrap(err, "network store");
  _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return bivy_error_errno(err, "network store: open %s", path);
  /* serialises lease allocation and network definition across concurrent bivy processes */
  r = bivy_flock_ex(fd);
  if (r < 0) return bivy_error(err, -r, "network store: lock %s", path);
  return steal_fd(&fd);
}

static int load_json(const char *path, json_t **out, bivy_error_t *err) {
  json_error_t je;
  *out = json_load_file(path, 0, &je);
  if (*out == NULL) {
    if (access(path, F_OK) < 0 && errno == ENOENT) return -ENOENT;
    return bivy_error(err, EINVAL, "%s: %s", path, je.text);
  }
  return 0;
}

static int save_json(const char *path, json_t *j, bivy_error_t *err) {
  _cleanup_free_ char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
  if (text == NULL) return -ENOMEM;
  return bivy_write_file_atomic(path, text, strlen(text), 0600, err);
}

int bivy_net_network_load(const char *root, const char *name, struct bivy_net_network *out, bivy_error_t *err) {
  if (!bivy_net_name_valid(name)) return bivy_error(err, EINVAL, "network \"%s\": bad name", name);
  _cleanup_free_ char *path = NULL;
  if (asprintf(&path, "%s/net/%s/network.json", root, name) < 0) return -ENOMEM;
  _cleanup_json_ json_t *j = NULL;
  int r = load_json(path, &j, err);
  if (r == -ENOENT) return bivy_error(err, ENOENT, "network \"%s\" does not exist", name);
  if (r < 0) return r;
  const char *subnet = json_string_value(json_object_get(j, "subnet"));
  const char *gw = json_string_value(json_object_get(j, "gateway"));
  json_int_t mtu = json_integer_value(json_object_get(j, "mtu"));
  memset(out, 0, sizeof(*out));
  snprintf(out->name, sizeof out->name, "%s", name);
  if (subnet == NULL || gw == NULL || bivy_net_subnet_parse(subnet, &out->subnet, err) < 0 ||
      bivy_net_ip_parse(gw, &out->gateway) < 0)
    return bivy_error(err, EINVAL, "%s: bad or missing subnet/gateway", path);
  out->mtu = mtu >= 576 && mtu <= 65535 ? (unsigned)mtu : BIVY_NET_DEFAULT_MTU;
  return 0;
}

int bivy_net_network_list(const char *root, char ***names, bivy_error_t *err) {
  _cleanup_free_ char *dir = NULL;
  if (asprintf(&dir, "%s/net", root) < 0) return -ENOMEM;
  *names = calloc(1, sizeof(char *));
  if (*names == NULL) return -ENOMEM;
  _cleanup_closedir_ DIR *d = opendir(dir);
  if (d == NULL) return errno == ENOENT ? 0 : bivy_error_errno(err, "network store: open %s", dir);
  size_t n = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (!bivy_net_name_valid(e->d_name)) continue;
    char **nv = realloc(*names, (n + 2) * sizeof(char *));
    if (nv == NULL) return -ENOMEM;
    *names = nv;
    if ((nv[n] = strdup(e->d_name)) == NULL) return -ENOMEM;
    nv[++n] = NULL;
  }
  for (size_t i = 1; i < n; i++) /* insertion sort: a handful of names */
    for (size_t k = i; k > 0 && strcmp((*names)[k - 1], (*names)[k]) > 0; k--) {
      char *t = (*names)[k];
      (*names)[k] = (*names)[k - 1];
      (*names)[k - 1] = t;
    }
  return 0;
}

static int next_free_subnet(const struct bivy_net_network *nets, size_t n_nets, struct bivy_net_subnet *out) {
  uint32_t base;
  bivy_net_ip_parse("10.207.0.0", &base);
  for (uint32_t i = 0; i < 256; i++) {
    struct bivy_net_subnet s = {.addr = base + (i << 8), .prefix = 24};
    bool clash = false;
    for (size_t k = 0; k < n_nets && !clash; k++) clash = bivy_net_subnet_overlap(&s, &nets[k].subnet);
    if (!clash) {
      *out = s;
      return 0;
    }
  }
  return -ENOSPC;
}

int bivy_net_network_ensure(const char *root, const char *name, const struct bivy_net_subnet *subnet, unsigned mtu,
                            struct bivy_net_network *out, bool *created, bivy_error_t *err) {
  char a[24], b[24];
  *created = false;
  int r = bivy_net_network_load(root, name, out, err);
  if (r == 0) {
    if (subnet && (subnet->addr != out->subnet.addr || subnet->prefix != out->subnet.prefix))
      return bivy_error(err, EEXIST, "annotations.%s: network \"%s\" already has subnet %s, not %s",
                        BIVY_SUBNET_ANNOTATION, name, bivy_net_subnet_str(&out->subnet, a, sizeof a),
                        bivy_net_subnet_str(subnet, b, sizeof b));
    return 0;
  }
  if (r != -ENOENT) return r;
  bivy_error_release(err);

  _cleanup_strv_ char **names = NULL;
  r = bivy_net_network_list(root, &names, err);
  if (r < 0) return r;
  size_t n = 0;
  while (names[n]) n++;
  _cleanup_free_ struct bivy_net_network *nets = calloc(n + 1, sizeof(*nets));
  if (nets == NULL) return -ENOMEM;
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (bivy_net_network_load(root, names[i], &nets[k], err) == 0) k++;
  bivy_error_release(err);

  struct bivy_net_subnet s;
  if (subnet) s = *subnet;
  else if (strcmp(name, BIVY_NET_DEFAULT_BRIDGE) == 0) bivy_net_subnet_parse(BIVY_NET_DEFAULT_SUBNET, &s, err);
  else if (next_free_subnet(nets, k, &s) < 0)
    return bivy_error(err, ENOSPC, "network \"%s\": no free 10.207.N.0/24 subnet; set annotations.%s", name,
                      BIVY_SUBNET_ANNOTATION);
  for (size_t i = 0; i < k; i++)
    if (bivy_net_subnet_overlap(&s, &nets[i].subnet))
      return bivy_error(err, EEXIST, "network \"%s\": subnet %s overlaps network \"%s\" (%s)", name,
                        bivy_net_subnet_str(&s, a, sizeof a), nets[i].name,
                        bivy_net_subnet_str(&nets[i].subnet, b, sizeof b));

  memset(out, 0, sizeof(*out));
  snprintf(out->name, sizeof out->name, "%s", name);
  out->subnet = s;
  out->gateway = s.addr + 1;
  out->mtu = mtu ? mtu : BIVY_NET_DEFAULT_MTU;

  _cleanup_free_ char *dir = NULL, *path = NULL;
  if (asprintf(&dir, "%s/net/%s", root, name) < 0 || asprintf(&path, "%s/network.json", dir) < 0) return -ENOMEM;
  r = bivy_mkdir_p(dir, 0700, err);
  if (r < 0) return bivy_error_wrap(err, "network store");
  _cleanup_json_ json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:i}", "name", name, "bridge", name, "subnet",
                                       bivy_net_subnet_str(&s, a, sizeof a), "gateway",
                                       bivy_net_ip_str(out->gateway, b, sizeof b), "mtu", (json_int_t)out->mtu);
  if (j == NULL) return -ENOMEM;
  r = save_json(path, j, err);
  if (r < 0) {
    rmdir(dir);
    return bivy_error_wrap(err, "network store");
  }
  *created = true;
  return 0;
}

int bivy_net_leases_load(const char *root, const char *name, json_t **out, bivy_error_t *err) {
  _cleanup_free_ char *path = NULL;
  if (asprintf(&path, "%s/net/%s/leases.json", root, name) < 0) return -ENOMEM;
  int r = load_json(path, out, err);
  if (r == -ENOENT) *out = json_object();
  else if (r < 0) return r;
  if (*out == NULL) return -ENOMEM;
  if (!json_is_object(json_object_get(*out, "leases"))) json_object_set_new(*out, "leases", json_object());
  if (!json_is_object(json_object_get(*out, "previous"))) json_object_set_new(*out, "previous", json_object());
  return 0;
}

static int leases_save(const char *root, const char *name, json_t *j, bivy_error_t *err) {
  _cleanup_free_ char *path = NULL;
  if (asprintf(&path, "%s/net/%s/leases.json", root, name) < 0) return -ENOMEM;
  return save_json(path, j, err);
}

int bivy_net_lease_acquire(const char *root, const struct bivy_net_network *net, const char *id, uint32_t *ip,
                           bivy_error_t *err) {
  _cleanup_json_ json_t *j = NULL;
  int r = bivy_net_leases_load(root, net->name, &j, err);
  if (r < 0) return r;
  json_t *leases = json_object_get(j, "leases"), *prev = json_object_get(j, "previous");
  char buf[16];
  const char *key;
  json_t *v;
  json_object_foreach(leases, key, v) {
    if (json_is_string(v) && strcmp(json_string_value(v), id) == 0 && bivy_net_ip_parse(key, ip) == 0 &&
        bivy_net_subnet_contains(&net->subnet, *ip))
      return 0; /* already leased to id (idempotent) */
  }
  uint32_t first = net->subnet.addr + 1, last = bivy_net_subnet_broadcast(&net->subnet) - 1;
  uint32_t chosen = 0, fallback = 0;
  const char *before = json_string_value(json_object_get(prev, id));
  uint32_t want;
  if (before && bivy_net_ip_parse(before, &want) == 0 && want > first && want <= last && want != net->gateway &&
      json_object_get(leases, before) == NULL)
    chosen = want;
  if (chosen == 0) {
    /* addresses someone used before are handed out last, so they stay theirs for longer */
    _cleanup_json_ json_t *used = json_object();
    if (used == NULL) return -ENOMEM;
    json_object_foreach(prev, key, v) if (json_is_string(v)) json_object_set_new(used, json_string_value(v), json_true());
    for (uint32_t a = first; a <= last && chosen == 0; a++) {
      if (a == net->gateway) continue;
      bivy_net_ip_str(a, buf, sizeof buf);
      if (json_object_get(leases, buf)) continue;
      if (json_object_get(used, buf) == NULL) chosen = a;
      else if (fallback == 0) fallback = a;
    }
    if (chosen == 0) chosen = fallback;
  }
  if (chosen == 0) {
    char sn[24];
    return bivy_error(err, ENOSPC, "network \"%s\": no free address in %s", net->name,
                      bivy_net_subnet_str(&net->subnet, sn, sizeof sn));
  }
  bivy_net_ip_str(chosen, buf, sizeof buf);
  /* an address given to a new owner is no longer someone else's "previous" one */
  void *tmp;
  json_object_foreach_safe(prev, tmp, key, v) {
    if (json_is_string(v) && strcmp(json_string_value(v), buf) == 0 && strcmp(key, id) != 0) json_object_del(prev, key);
  }
  json_object_del(prev, id);
  if (json_object_set_new(leases, buf, json_string(id)) < 0) return -ENOMEM;
  r = leases_save(root, net->name, j, err);
  if (r < 0) return bivy_error_wrap(err, "network \"%s\": save lease", net->name);
  *ip = chosen;
  return 0;
}

int bivy_net_lease_release(const char *root, const char *name, const char *id, bivy_error_t *err) {
  _cleanup_json_ json_t *j = NULL;
  int r = bivy_net_leases_load(root, name, &j, err);
  if (r < 0) return r;
  json_t *leases = json_object_get(j, "leases"), *prev = json_object_get(j, "previous");
  const char *key;
  json_t *v;
  void *tmp;
  bool changed = false;
  json_object_foreach_safe(leases, tmp, key, v) {
    if (json_is_string(v) && strcmp(json_string_value(v), id) == 0) {
      json_object_set_new(prev, id, json_string(key));
      json_object_del(leases, key);
      changed = true;
    }
  }
  if (!changed) return 0;
  r = leases_save(root, name, j, err);
  if (r < 0) return bivy_error_wrap(err, "network \"%s\": release lease of %s", name, id);
  return 0;
}

int bivy_net_network_remove(const char *root, const char *name, bivy_error_t *err) {
  _cleanup_free_ char *dir = NULL;
  if (!bivy_net_name_valid(name)) return bivy_error(err, EINVAL, "network \"%s\": bad name", name);
  if (asprintf(&dir, "%s/net/%s", root, name) < 0) return -ENOMEM;
  return bivy_rm_rf(dir, err);
}
