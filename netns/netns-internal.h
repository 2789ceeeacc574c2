/* netns/ private interfaces: parsing (mode.c), the lease store (ipam.c), links through
 * libnl-3 (link.c) and port publishing through libnftables (nft.c). Only netns/, its unit
 * tests and tools/bivy/net.c include this header. */
#ifndef BIVY_NETNS_INTERNAL_H
#define BIVY_NETNS_INTERNAL_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "netns/netns.h"
#include "runtime/error.h"

#define BIVY_NET_DEFAULT_BRIDGE "bivy0"
/* Avoids 10.88/16 (podman), 172.17/16 (docker), 192.168.122/24 (libvirt). */
#define BIVY_NET_DEFAULT_SUBNET "10.207.0.0/24"
#define BIVY_NET_DEFAULT_MTU 1500
#define BIVY_NFT_TABLE "bivy"

enum bivy_net_kind {
  BIVY_NET_NONE,      /* own netns, loopback only */
  BIVY_NET_HOST,      /* no netns */
  BIVY_NET_BRIDGE,    /* own netns + veth on a bridge */
  BIVY_NET_CONTAINER, /* share another container's netns */
  BIVY_NET_NS,        /* join an existing namespace file */
};

struct bivy_net_mode {
  enum bivy_net_kind kind;
  char bridge[IFNAMSIZ]; /* BRIDGE: network (= bridge) name */
  char *arg;             /* CONTAINER: id; NS: path (owned) */
};

struct bivy_net_subnet {
  uint32_t addr; /* network address, host byte order */
  unsigned prefix;
};

struct bivy_net_publish {
  uint32_t host_addr; /* host byte order; 0 with any_addr */
  bool any_addr;
  uint16_t host_port, ctr_port;
  int proto; /* IPPROTO_TCP or IPPROTO_UDP */
};

struct bivy_net_network {
  char name[IFNAMSIZ]; /* network name = bridge interface name */
  struct bivy_net_subnet subnet;
  uint32_t gateway; /* host byte order */
  unsigned mtu;
};

/* ---- mode.c: pure parsing and address math ---- */
int bivy_net_mode_parse(const char *s, struct bivy_net_mode *out, bivy_error_t *err);
void bivy_net_mode_clear(struct bivy_net_mode *m);
const char *bivy_net_kind_name(enum bivy_net_kind k);
/* A network/bridge name: 1..15 chars of [A-Za-z0-9_-], starting with a letter or digit. */
bool bivy_net_name_valid(const char *name);
int bivy_net_subnet_parse(const char *s, struct bivy_net_subnet *out, bivy_error_t *err);
bool bivy_net_subnet_overlap(const struct bivy_net_subnet *a, const struct bivy_net_subnet *b);
bool bivy_net_subnet_contains(const struct bivy_net_subnet *s, uint32_t ip);
uint32_t bivy_net_subnet_mask(unsigned prefix);
uint32_t bivy_net_subnet_broadcast(const struct bivy_net_subnet *s);
/* "a.b.c.d/p" into buf (>= 19 bytes) */
const char *bivy_net_subnet_str(const struct bivy_net_subnet *s, char *buf, size_t len);
/* dotted quad of a host-order address into buf (>= 16 bytes) */
const char *bivy_net_ip_str(uint32_t ip, char *buf, size_t len);
int bivy_net_ip_parse(const char *s, uint32_t *out);
/* Locally administered unicast MAC 02:62:a:b:c:d derived from the IPv4 address. */
void bivy_net_mac_from_ip(uint32_t ip, uint8_t mac[6]);
/* Host-side veth name for an address: "bv" + 8 hex digits (unique per address). */
void bivy_net_veth_name(uint32_t ip, char name[IFNAMSIZ]);
/* One "[ADDR:]HOSTPORT:CTRPORT[/tcp|udp]" entry. `where` names the source in errors. */
int bivy_net_publish_parse(const char *s, const char *where, struct bivy_net_publish *out,
                           bivy_error_t *err);
/* Comma-separated list; rejects the same host address/port/protocol twice. */
int bivy_net_publish_parse_list(const char *s, const char *where, struct bivy_net_publish **out,
                                size_t *n, bivy_error_t *err);
const char *bivy_net_proto_name(int proto);

/* ---- ipam.c: the network store ROOT/net/NAME/{network.json,leases.json}, locked by
 * ROOT/net/.lock (flock) ---- */
int bivy_net_store_lock(const char *root, bivy_error_t *err);
/* Load one network's definition (-ENOENT if the store has none). */
int bivy_net_network_load(const char *root, const char *name, struct bivy_net_network *out,
                          bivy_error_t *err);
/* Caller holds the lock. Load NAME, or define it with `subnet` (NULL: the default for
 * bivy0, else the first free 10.207.N.0/24), refusing overlaps with other networks.
 * *created tells whether the definition is new. */
int bivy_net_network_ensure(const char *root, const char *name, const struct bivy_net_subnet *subnet,
                            unsigned mtu, struct bivy_net_network *out, bool *created,
                            bivy_error_t *err);
/* Caller holds the lock. Remove the network's directory (leases must be empty). */
int bivy_net_network_remove(const char *root, const char *name, bivy_error_t *err);
/* All network names in the store (NULL-terminated, sorted). */
int bivy_net_network_list(const char *root, char ***names, bivy_error_t *err);
/* Caller holds the lock. Lease an address for id: the one id already holds, else the one it
 * held before (if free), else the lowest never-used address, else the lowest free one. */
int bivy_net_lease_acquire(const char *root, const struct bivy_net_network *net, const char *id,
                           uint32_t *ip, bivy_error_t *err);
/* Caller holds the lock. Release id's lease (remembering it for id). Missing is fine. */
int bivy_net_lease_release(const char *root, const char *name, const char *id, bivy_error_t *err);
/* The leases file as JSON ({"leases": {IP: ID}, "previous": {ID: IP}}). */
int bivy_net_leases_load(const char *root, const char *name, json_t **out, bivy_error_t *err);

/* ---- link.c: libnl-3 route ---- */
struct nl_sock;
int bivy_nl_open(struct nl_sock **out, bivy_error_t *err);
/* A NETLINK_ROUTE socket that lives in the network namespace nsfd (opened by a short-lived
 * thread that setns()es there, so this process never leaves its own namespace). */
int bivy_nl_open_in_ns(int nsfd, struct nl_sock **out, bivy_error_t *err);
void bivy_nl_close(struct nl_sock *sk);
/* Create bridge `net->name` with the gateway address if absent (*created), bring it up. */
int bivy_link_bridge_ensure(struct nl_sock *sk, const struct bivy_net_network *net, bool *created,
                            bivy_error_t *err);
/* veth pair: host end `host_name` enslaved to the bridge and up; peer created directly inside
 * the namespace nsfd as `peer_name` with the MAC and MTU. */
int bivy_link_veth_create(struct nl_sock *sk, const char *host_name, const char *bridge, int nsfd,
                          const char *peer_name, const uint8_t mac[6], unsigned mtu, bivy_error_t *err);
/* Delete a link by name; an absent link is fine (returns 0). *existed tells which. */
int bivy_link_delete(struct nl_sock *sk, const char *name, bool *existed, bivy_error_t *err);
/* ifindex of a link, or -ENODEV */
int bivy_link_index(struct nl_sock *sk, const char *name, bivy_error_t *err);
/* Inside the container netns: lo up; if ifname: address ip/prefix, up, default route via gw. */
int bivy_link_configure_ns(struct nl_sock *sk, const char *ifname, uint32_t ip, unsigned prefix,
                           uint32_t gw, bivy_error_t *err);
/* Does an IPv4 address in this netns (on an interface other than skip_if) overlap s?
 * Returns 1 and describes it in desc, 0, or -errno. */
int bivy_link_subnet_conflict(struct nl_sock *sk, const struct bivy_net_subnet *s, const char *skip_if, char *desc,
                              size_t len, bivy_error_t *err);
/* Number of ports enslaved to the bridge (0 if it does not exist), or -errno. */
int bivy_link_bridge_ports(struct nl_sock *sk, const char *bridge, bivy_error_t *err);

/* ---- nft.c: libnftables, table ip bivy ---- */
/* Create table ip bivy (map "pub", set "masq", nat chains) unless present. */
int bivy_nft_ensure(bivy_error_t *err);
int bivy_nft_masq_add(const struct bivy_net_subnet *s, bivy_error_t *err);
int bivy_nft_masq_del(const struct bivy_net_subnet *s, bivy_error_t *err);
/* Publish (one transaction, all or nothing): fails with -EEXIST naming the port when a host
 * address/port/protocol is already published. */
int bivy_nft_publish(const struct bivy_net_publish *p, size_t n, uint32_t ctr_ip, bivy_error_t *err);
/* Remove the published elements that still map to ctr_ip; absent ones are fine. */
int bivy_nft_unpublish(const struct bivy_net_publish *p, size_t n, uint32_t ctr_ip, bivy_error_t *err);
/* Run an nft script; output (if out) returned malloc'd. */
int bivy_nft_run(const char *cmd, char **out, bivy_error_t *err);

#endif
