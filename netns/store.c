/* Network management for `bivy net`: create, list, inspect and remove bridge networks. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netns/netns-internal.h"
#include "runtime/cleanup.h"
#include "runtime/util.h"

static void nlsockp(struct nl_sock **s) {
  if (*s) bivy_nl_close(*s);
}
#define _cleanup_nlsock_ _cleanup_(nlsockp)

static int network_json(const char *root, const struct bivy_net_network *net, bool detail, json_t **out,
                        bivy_error_t *err) {
  char sn[24], gw[16];
  _cleanup_json_ json_t *leases = NULL;
  int r = bivy_net_leases_load(root, net->name, &leases, err);
  if (r < 0) return r;
  json_t *l = json_object_get(leases, "leases");
  _cleanup_nlsock_ struct nl_sock *sk = NULL;
  int ports = -1;
  if (bivy_nl_open(&sk, err) == 0) ports = bivy_link_bridge_ports(sk, net->name, err);
  bool present = sk && bivy_link_index(sk, net->name, err) > 0;
  bivy_error_release(err);
  _cleanup_json_ json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:b}", "name", net->name, "bridge", net->name,
                                       "subnet", bivy_net_subnet_str(&net->subnet, sn, sizeof sn), "gateway",
                                       bivy_net_ip_str(net->gateway, gw, sizeof gw), "mtu", (json_int_t)net->mtu,
                                       "leases", (json_int_t)json_object_size(l), "bridgePresent", present);
  if (j == NULL) return -ENOMEM;
  if (detail) {
    json_t *ctrs = json_array();
    const char *ip;
    json_t *id;
    json_object_foreach(l, ip, id) {
      json_t *c = json_pack("{s:s, s:O}", "ip", ip, "id", id);
      _cleanup_free_ char *path = NULL;
      if (c && json_is_string(id) && asprintf(&path, "%s/%s/state.json", root, json_string_value(id)) >= 0) {
        _cleanup_json_ json_t *st = json_load_file(path, 0, NULL);
        json_t *pub = json_object_get(json_object_get(st, "net"), "publish");
        if (pub) json_object_set(c, "publish", pub);
      }
      json_array_append_new(ctrs, c);
    }
    json_object_set_new(j, "containers", ctrs);
    json_object_set_new(j, "bridgePorts", json_integer(ports));
    _cleanup_free_ char *fwd = NULL;
    _cleanup_error_ bivy_error_t e = NULL;
    bool on = bivy_read_file_at(AT_FDCWD, "/proc/sys/net/ipv4/ip_forward", &fwd, NULL, &e) == 0 && fwd[0] == '1';
    json_object_set_new(j, "ipForward", json_boolean(on));
  }
  *out = steal_pointer(&j);
  return 0;
}

int bivy_net_list(const char *root, json_t **out, bivy_error_t *err) {
  _cleanup_strv_ char **names = NULL;
  int r = bivy_net_network_list(root, &names, err);
  if (r < 0) return r;
  _cleanup_json_ json_t *arr = json_array();
  if (arr == NULL) return -ENOMEM;
  for (char **n = names; *n; n++) {
    struct bivy_net_network net;
    json_t *j;
    if (bivy_net_network_load(root, *n, &net, err) < 0 || network_json(root, &net, false, &j, err) < 0) {
      bivy_error_release(err);
      continue; /* a half-written entry (concurrent create) is not listed */
    }
    json_array_append_new(arr, j);
  }
  *out = steal_pointer(&arr);
  return 0;
}

int bivy_net_inspect(const char *root, const char *name, json_t **out, bivy_error_t *err) {
  struct bivy_net_network net;
  int r = bivy_net_network_load(root, name, &net, err);
  if (r < 0) return r;
  return network_json(root, &net, true, out, err);
}

int bivy_net_create(const char *root, const char *name, const char *subnet, unsigned mtu, bivy_error_t *err) {
  if (!bivy_net_name_valid(name))
    return bivy_error(err, EINVAL, "network name \"%s\": 1-%d characters of A-Z a-z 0-9 _ -, starting with a letter or digit",
                      name, IFNAMSIZ - 1);
  if (mtu && (mtu < 576 || mtu > 65535)) return bivy_error(err, EINVAL, "--mtu: %u is outside 576-65535", mtu);
  struct bivy_net_subnet s;
  if (subnet && bivy_net_subnet_parse(subnet, &s, err) < 0) return bivy_error_wrap(err, "--subnet");
  _cleanup_nlsock_ struct nl_sock *sk = NULL;
  int r = bivy_nl_open(&sk, err);
  if (r < 0) return r;
  _cleanup_close_ int lock = bivy_net_store_lock(root, err);
  if (lock < 0) return lock;
  struct bivy_net_network net;
  if (bivy_net_network_load(root, name, &net, err) == 0) return bivy_error(err, EEXIST, "network \"%s\" already exists", name);
  bivy_error_release(err);
  bool created = false, br_created = false;
  r = bivy_net_network_ensure(root, name, subnet ? &s : NULL, mtu, &net, &created, err);
  if (r < 0) return r;
  char desc[96], sn[24];
  r = bivy_link_subnet_conflict(sk, &net.subnet, name, desc, sizeof desc, err);
  if (r > 0)
    r = bivy_error(err, EEXIST, "network \"%s\": subnet %s overlaps %s", name, bivy_net_subnet_str(&net.subnet, sn, sizeof sn), desc);
  if (r >= 0) r = bivy_link_bridge_ensure(sk, &net, &br_created, err);
  if (r >= 0) r = bivy_nft_masq_add(&net.subnet, err);
  if (r < 0) {
    _cleanup_error_ bivy_error_t e = NULL;
    bool existed;
    if (br_created) bivy_link_delete(sk, name, &existed, &e);
    bivy_net_network_remove(root, name, &e);
    return r;
  }
  return 0;
}

int bivy_net_remove(const char *root, const char *name, bivy_error_t *err) {
  _cleanup_nlsock_ struct nl_sock *sk = NULL;
  int r = bivy_nl_open(&sk, err);
  if (r < 0) return r;
  _cleanup_close_ int lock = bivy_net_store_lock(root, err);
  if (lock < 0) return lock;
  struct bivy_net_network net;
  /* only bridges bivy defined are removed: never an operator's own interface of that name */
  r = bivy_net_network_load(root, name, &net, err);
  if (r < 0) return r;
  _cleanup_json_ json_t *leases = NULL;
  r = bivy_net_leases_load(root, name, &leases, err);
  if (r < 0) return r;
  size_t n = json_object_size(json_object_get(leases, "leases"));
  if (n > 0) return bivy_error(err, EBUSY, "network \"%s\" is in use by %zu container(s)", name, n);
  int ports = bivy_link_bridge_ports(sk, name, err);
  if (ports < 0) return ports;
  if (ports > 0) return bivy_error(err, EBUSY, "network \"%s\" is in use: bridge %s has %d port(s)", name, name, ports);
  bool existed;
  r = bivy_link_delete(sk, name, &existed, err);
  if (r < 0) return r;
  r = bivy_nft_masq_del(&net.subnet, err);
  if (r < 0) return r;
  return bivy_net_network_remove(root, name, err);
}
