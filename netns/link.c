/* Links, addresses and routes through libnl-3 route (never the `ip` tool). */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <linux/rtnetlink.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "netns/netns-internal.h"
#include "runtime/cleanup.h"

/* libnl's NLE_* codes -> errno, for bivy's -errno convention */
static int nl2errno(int nle) {
  switch (nle < 0 ? -nle : nle) {
    case NLE_EXIST: return EEXIST;
    case NLE_NODEV:
    case NLE_OBJ_NOTFOUND: return ENODEV;
    case NLE_PERM: return EPERM;
    case NLE_NOMEM: return ENOMEM;
    case NLE_BUSY: return EBUSY;
    case NLE_INVAL: return EINVAL;
    case NLE_NOADDR: return EADDRNOTAVAIL;
    case NLE_AGAIN: return EAGAIN;
    case NLE_RANGE: return ERANGE;
    case NLE_OPNOTSUPP: return EOPNOTSUPP;
    default: return EIO;
  }
}

static int nl_fail(bivy_error_t *err, int nle, const char *what, const char *name) {
  return bivy_error(err, nl2errno(nle), "%s %s: %s", what, name, nl_geterror(nle));
}

static void linkp(struct rtnl_link **l) {
  if (*l) rtnl_link_put(*l);
}
static void addrp(struct nl_addr **a) {
  if (*a) nl_addr_put(*a);
}
static void rtaddrp(struct rtnl_addr **a) {
  if (*a) rtnl_addr_put(*a);
}
static void routep(struct rtnl_route **r) {
  if (*r) rtnl_route_put(*r);
}
static void cachep(struct nl_cache **c) {
  if (*c) nl_cache_free(*c);
}
#define _cleanup_link_ _cleanup_(linkp)
#define _cleanup_nladdr_ _cleanup_(addrp)
#define _cleanup_rtaddr_ _cleanup_(rtaddrp)
#define _cleanup_route_ _cleanup_(routep)
#define _cleanup_cache_ _cleanup_(cachep)

void bivy_nl_close(struct nl_sock *sk) {
  if (sk) nl_socket_free(sk);
}

int bivy_nl_open(struct nl_sock **out, bivy_error_t *err) {
  struct nl_sock *sk = nl_socket_alloc();
  if (sk == NULL) return bivy_error(err, ENOMEM, "netlink socket");
  int r = nl_connect(sk, NETLINK_ROUTE); /* libnl opens it SOCK_CLOEXEC */
  if (r < 0) {
    nl_socket_free(sk);
    return bivy_error(err, nl2errno(r), "netlink connect: %s", nl_geterror(r));
  }
  *out = sk;
  return 0;
}

struct ns_open {
  int nsfd;
  struct nl_sock *sk;
  int r;
  bivy_error_t err;
};

static void *ns_open_thread(void *arg) {
  struct ns_open *o = arg;
  /* only this short-lived thread enters the container's netns; a netlink socket stays bound
   * to the namespace it was created in, so the process itself never leaves its own */
  if (setns(o->nsfd, CLONE_NEWNET) < 0) {
    o->r = bivy_error_errno(&o->err, "setns into the container network namespace");
    return NULL;
  }
  o->r = bivy_nl_open(&o->sk, &o->err);
  return NULL;
}

int bivy_nl_open_in_ns(int nsfd, struct nl_sock **out, bivy_error_t *err) {
  struct ns_open o = {.nsfd = nsfd};
  pthread_t t;
  int r = pthread_create(&t, NULL, ns_open_thread, &o);
  if (r != 0) return bivy_error(err, r, "netlink: start namespace thread");
  pthread_join(t, NULL);
  if (o.r < 0) {
    bivy_error_release(err);
    *err = o.err;
    return o.r;
  }
  *out = o.sk;
  return 0;
}

int bivy_link_index(struct nl_sock *sk, const char *name, bivy_error_t *err) {
  _cleanup_link_ struct rtnl_link *l = NULL;
  int r = rtnl_link_get_kernel(sk, 0, name, &l);
  if (r < 0) return nl_fail(err, r, "link", name);
  return rtnl_link_get_ifindex(l);
}

static int link_up(struct nl_sock *sk, const char *name, bivy_error_t *err) {
  _cleanup_link_ struct rtnl_link *l = NULL, *chg = NULL;
  int r = rtnl_link_get_kernel(sk, 0, name, &l);
  if (r < 0) return nl_fail(err, r, "link", name);
  if (rtnl_link_get_flags(l) & IFF_UP) return 0;
  if ((chg = rtnl_link_alloc()) == NULL) return -ENOMEM;
  rtnl_link_set_flags(chg, IFF_UP);
  r = rtnl_link_change(sk, l, chg, 0);
  if (r < 0) return nl_fail(err, r, "set up", name);
  return 0;
}

static int addr_add(struct nl_sock *sk, int ifindex, const char *ifname, uint32_t ip, unsigned prefix,
                    uint32_t bcast, bivy_error_t *err) {
  uint32_t be = htonl(ip), bbe = htonl(bcast);
  _cleanup_rtaddr_ struct rtnl_addr *a = rtnl_addr_alloc();
  _cleanup_nladdr_ struct nl_addr *local = nl_addr_build(AF_INET, &be, 4);
  _cleanup_nladdr_ struct nl_addr *brd = nl_addr_build(AF_INET, &bbe, 4);
  if (a == NULL || local == NULL || brd == NULL) return -ENOMEM;
  nl_addr_set_prefixlen(local, (int)prefix);
  rtnl_addr_set_ifindex(a, ifindex);
  rtnl_addr_set_family(a, AF_INET);
  rtnl_addr_set_local(a, local);
  rtnl_addr_set_broadcast(a, brd);
  int r = rtnl_addr_add(sk, a, 0);
  if (r == -NLE_EXIST) return 0;
  if (r < 0) {
    char ipb[16];
    return bivy_error(err, nl2errno(r), "add address %s/%u to %s: %s", bivy_net_ip_str(ip, ipb, sizeof ipb), prefix,
                      ifname, nl_geterror(r));
  }
  return 0;
}

int bivy_link_bridge_ensure(struct nl_sock *sk, const struct bivy_net_network *net, bool *created, bivy_error_t *err) {
  *created = false;
  _cleanup_link_ struct rtnl_link *l = NULL;
  int r = rtnl_link_get_kernel(sk, 0, net->name, &l);
  if (r == 0) {
    const char *type = rtnl_link_get_type(l);
    if (type == NULL || strcmp(type, "bridge") != 0)
      return bivy_error(err, EEXIST, "bridge %s: an interface of that name exists and is not a bridge (%s)", net->name,
                        type ? type : "no type");
  } else if (r == -NLE_OBJ_NOTFOUND || r == -NLE_NODEV) {
    _cleanup_link_ struct rtnl_link *br = rtnl_link_bridge_alloc();
    if (br == NULL) return -ENOMEM;
    rtnl_link_set_name(br, net->name);
    rtnl_link_set_mtu(br, net->mtu);
    rtnl_link_set_flags(br, IFF_UP);
    r = rtnl_link_add(sk, br, NLM_F_CREATE | NLM_F_EXCL);
    if (r < 0 && r != -NLE_EXIST) return nl_fail(err, r, "create bridge", net->name);
    *created = r == 0;
    r = rtnl_link_get_kernel(sk, 0, net->name, &l);
    if (r < 0) return nl_fail(err, r, "bridge", net->name);
  } else {
    return nl_fail(err, r, "look up bridge", net->name);
  }
  r = addr_add(sk, rtnl_link_get_ifindex(l), net->name, net->gateway, net->subnet.prefix,
               bivy_net_subnet_broadcast(&net->subnet), err);
  if (r == 0) r = link_up(sk, net->name, err);
  if (r < 0 && *created) {
    bool existed;
    _cleanup_error_ bivy_error_t e2 = NULL;
    bivy_link_delete(sk, net->name, &existed, &e2);
    *created = false;
  }
  return r;
}

int bivy_link_veth_create(struct nl_sock *sk, const char *host_name, const char *bridge, int nsfd,
                          const char *peer_name, const uint8_t mac[6], unsigned mtu, bivy_error_t *err) {
  int br = bivy_link_index(sk, bridge, err);
  if (br < 0) return br;
  struct rtnl_link *veth = rtnl_link_veth_alloc();
  if (veth == NULL) return -ENOMEM;
  struct rtnl_link *peer = rtnl_link_veth_get_peer(veth);
  _cleanup_nladdr_ struct nl_addr *lladdr = nl_addr_build(AF_LLC, mac, 6);
  int r = -ENOMEM;
  if (peer && lladdr) {
    rtnl_link_set_name(veth, host_name);
    rtnl_link_set_master(veth, br);
    rtnl_link_set_mtu(veth, mtu);
    rtnl_link_set_flags(veth, IFF_UP);
    /* the container end is born inside the container's netns (by fd, immune to pid reuse):
     * it never exists in the host namespace under a name another container could race for */
    rtnl_link_set_name(peer, peer_name);
    rtnl_link_set_ns_fd(peer, nsfd);
    rtnl_link_set_addr(peer, lladdr);
    rtnl_link_set_mtu(peer, mtu);
    r = rtnl_link_add(sk, veth, NLM_F_CREATE | NLM_F_EXCL);
    if (r < 0) r = nl_fail(err, r, "create veth pair", host_name);
  }
  if (peer) rtnl_link_put(peer);
  rtnl_link_veth_release(veth);
  return r;
}

int bivy_link_delete(struct nl_sock *sk, const char *name, bool *existed, bivy_error_t *err) {
  _cleanup_link_ struct rtnl_link *l = rtnl_link_alloc();
  if (l == NULL) return -ENOMEM;
  rtnl_link_set_name(l, name);
  int r = rtnl_link_delete(sk, l);
  *existed = r == 0;
  if (r == -NLE_OBJ_NOTFOUND || r == -NLE_NODEV) return 0;
  if (r < 0) return nl_fail(err, r, "delete link", name);
  return 0;
}

int bivy_link_configure_ns(struct nl_sock *sk, const char *ifname, uint32_t ip, unsigned prefix, uint32_t gw,
                           bivy_error_t *err) {
  int r = link_up(sk, "lo", err);
  if (r < 0 || ifname == NULL) return r;
  int idx = bivy_link_index(sk, ifname, err);
  if (idx < 0) return idx;
  struct bivy_net_subnet s = {.addr = ip & bivy_net_subnet_mask(prefix), .prefix = prefix};
  r = addr_add(sk, idx, ifname, ip, prefix, bivy_net_subnet_broadcast(&s), err);
  if (r < 0) return r;
  r = link_up(sk, ifname, err);
  if (r < 0) return r;

  uint32_t zero = 0, gbe = htonl(gw);
  _cleanup_route_ struct rtnl_route *rt = rtnl_route_alloc();
  _cleanup_nladdr_ struct nl_addr *dst = nl_addr_build(AF_INET, &zero, 4);
  _cleanup_nladdr_ struct nl_addr *via = nl_addr_build(AF_INET, &gbe, 4);
  struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
  if (rt == NULL || dst == NULL || via == NULL || nh == NULL) {
    if (nh) rtnl_route_nh_free(nh);
    return -ENOMEM;
  }
  nl_addr_set_prefixlen(dst, 0);
  rtnl_route_set_family(rt, AF_INET);
  rtnl_route_set_table(rt, RT_TABLE_MAIN);
  rtnl_route_set_protocol(rt, RTPROT_STATIC);
  rtnl_route_set_scope(rt, RT_SCOPE_UNIVERSE);
  rtnl_route_set_type(rt, RTN_UNICAST);
  rtnl_route_set_dst(rt, dst);
  rtnl_route_nh_set_ifindex(nh, idx);
  rtnl_route_nh_set_gateway(nh, via);
  rtnl_route_add_nexthop(rt, nh); /* the route owns nh now */
  r = rtnl_route_add(sk, rt, NLM_F_CREATE | NLM_F_EXCL);
  if (r < 0 && r != -NLE_EXIST) {
    char g[16];
    return bivy_error(err, nl2errno(r), "add default route via %s: %s", bivy_net_ip_str(gw, g, sizeof g),
                      nl_geterror(r));
  }
  return 0;
}

int bivy_link_bridge_ports(struct nl_sock *sk, const char *bridge, bivy_error_t *err) {
  _cleanup_link_ struct rtnl_link *br = NULL;
  int r = rtnl_link_get_kernel(sk, 0, bridge, &br);
  if (r == -NLE_OBJ_NOTFOUND || r == -NLE_NODEV) return 0;
  if (r < 0) return nl_fail(err, r, "bridge", bridge);
  _cleanup_cache_ struct nl_cache *cache = NULL;
  r = rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache);
  if (r < 0) return nl_fail(err, r, "list links of", bridge);
  int n = 0, idx = rtnl_link_get_ifindex(br);
  for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o))
    if (rtnl_link_get_master((struct rtnl_link *)o) == idx) n++;
  return n;
}

int bivy_link_subnet_conflict(struct nl_sock *sk, const struct bivy_net_subnet *s, const char *skip_if,
                              char *desc, size_t len, bivy_error_t *err) {
  _cleanup_cache_ struct nl_cache *addrs = NULL, *links = NULL;
  int r = rtnl_addr_alloc_cache(sk, &addrs);
  if (r == 0) r = rtnl_link_alloc_cache(sk, AF_UNSPEC, &links);
  if (r < 0) return bivy_error(err, nl2errno(r), "list addresses: %s", nl_geterror(r));
  for (struct nl_object *o = nl_cache_get_first(addrs); o; o = nl_cache_get_next(o)) {
    struct rtnl_addr *a = (struct rtnl_addr *)o;
    struct nl_addr *local = rtnl_addr_get_local(a);
    if (rtnl_addr_get_family(a) != AF_INET || local == NULL || nl_addr_get_len(local) != 4) continue;
    char ifname[IFNAMSIZ] = "?";
    rtnl_link_i2name(links, rtnl_addr_get_ifindex(a), ifname, sizeof ifname);
    if (skip_if && strcmp(ifname, skip_if) == 0) continue;
    uint32_t ip;
    memcpy(&ip, nl_addr_get_binary_addr(local), 4);
    ip = ntohl(ip);
    if ((ip >> 24) == 127) continue;
    unsigned p = (unsigned)rtnl_addr_get_prefixlen(a);
    struct bivy_net_subnet other = {.addr = ip & bivy_net_subnet_mask(p), .prefix = p};
    if (bivy_net_subnet_overlap(s, &other)) {
      char ipb[16];
      snprintf(desc, len, "address %s/%u on %s", bivy_net_ip_str(ip, ipb, sizeof ipb), p, ifname);
      return 1;
    }
  }
  return 0;
}
