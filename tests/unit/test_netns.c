/* netns/: annotation parsing, subnet math, the lease store and the namespace resolution. */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netns/netns-internal.h"
#include "runtime/cleanup.h"
#include "runtime/config.h"
#include "runtime/util.h"

static uint32_t ip(const char *s) {
  uint32_t v = 0;
  cr_assert_eq(bivy_net_ip_parse(s, &v), 0, "%s", s);
  return v;
}

static void check_err(int r, bivy_error_t err, const char *text) {
  cr_assert_lt(r, 0);
  cr_assert_not_null(err);
  cr_assert(strstr(err->msg, text) != NULL, "error [%s] lacks [%s]", err->msg, text);
}
/* the call runs before err is read (argument evaluation order is unspecified) */
#define assert_err(call, err, text) \
  do {                              \
    int r_ = (call);                \
    check_err(r_, (err), (text));   \
  } while (0)

Test(netns_mode, parses_every_mode) {
  _cleanup_error_ bivy_error_t err = NULL;
  struct bivy_net_mode m;
  cr_assert_eq(bivy_net_mode_parse("none", &m, &err), 0);
  cr_assert_eq(m.kind, BIVY_NET_NONE);
  cr_assert_eq(bivy_net_mode_parse("host", &m, &err), 0);
  cr_assert_eq(m.kind, BIVY_NET_HOST);
  cr_assert_eq(bivy_net_mode_parse("bridge", &m, &err), 0);
  cr_assert_eq(m.kind, BIVY_NET_BRIDGE);
  cr_assert_str_eq(m.bridge, "bivy0");
  cr_assert_eq(bivy_net_mode_parse("bridge:web_net-2", &m, &err), 0);
  cr_assert_str_eq(m.bridge, "web_net-2");
  cr_assert_eq(bivy_net_mode_parse("container:db-1", &m, &err), 0);
  cr_assert_eq(m.kind, BIVY_NET_CONTAINER);
  cr_assert_str_eq(m.arg, "db-1");
  bivy_net_mode_clear(&m);
  cr_assert_eq(bivy_net_mode_parse("ns:/run/netns/x", &m, &err), 0);
  cr_assert_eq(m.kind, BIVY_NET_NS);
  cr_assert_str_eq(m.arg, "/run/netns/x");
  bivy_net_mode_clear(&m);
}

Test(netns_mode, rejects_bad_input) {
  _cleanup_error_ bivy_error_t err = NULL;
  struct bivy_net_mode m;
  assert_err(bivy_net_mode_parse("bridge:", &m, &err), err, "bad bridge name \"\"");
  assert_err(bivy_net_mode_parse("bridge:a/b", &m, &err), err, "bad bridge name");
  assert_err(bivy_net_mode_parse("bridge:sixteen-chars-xx", &m, &err), err, "bad bridge name");
  assert_err(bivy_net_mode_parse("bridge:-x", &m, &err), err, "bad bridge name");
  assert_err(bivy_net_mode_parse("bridge:a b", &m, &err), err, "bad bridge name");
  assert_err(bivy_net_mode_parse("container:", &m, &err), err, "bad container id");
  assert_err(bivy_net_mode_parse("container:../x", &m, &err), err, "bad container id");
  assert_err(bivy_net_mode_parse("ns:relative", &m, &err), err, "absolute path");
  assert_err(bivy_net_mode_parse("slirp", &m, &err), err, "annotations.org.bivy.net: unknown mode \"slirp\"");
  cr_assert(bivy_net_name_valid("bivy0"));
  cr_assert(bivy_net_name_valid("a23456789012345"));
  cr_assert(!bivy_net_name_valid("a234567890123456"));
}

Test(netns_publish, parses_entries) {
  _cleanup_error_ bivy_error_t err = NULL;
  struct bivy_net_publish p;
  cr_assert_eq(bivy_net_publish_parse("8080:80", "x", &p, &err), 0);
  cr_assert(p.any_addr);
  cr_assert_eq(p.host_port, 8080);
  cr_assert_eq(p.ctr_port, 80);
  cr_assert_eq(p.proto, IPPROTO_TCP);
  cr_assert_eq(bivy_net_publish_parse("127.0.0.1:5353:53/udp", "x", &p, &err), 0);
  cr_assert(!p.any_addr);
  cr_assert_eq(p.host_addr, ip("127.0.0.1"));
  cr_assert_eq(p.proto, IPPROTO_UDP);
  cr_assert_eq(bivy_net_publish_parse("65535:1/tcp", "x", &p, &err), 0);
  cr_assert_eq(bivy_net_publish_parse("0.0.0.0:1:2", "x", &p, &err), 0);
  cr_assert(p.any_addr);
}

Test(netns_publish, rejects_bad_entries) {
  _cleanup_error_ bivy_error_t err = NULL;
  struct bivy_net_publish p;
  const char *w = "annotations.org.bivy.publish";
  assert_err(bivy_net_publish_parse("0:80", w, &p, &err), err, "host port \"0\" is not a port number (1-65535)");
  assert_err(bivy_net_publish_parse("65536:80", w, &p, &err), err, "host port \"65536\"");
  assert_err(bivy_net_publish_parse("-1:80", w, &p, &err), err, "host port \"-1\"");
  assert_err(bivy_net_publish_parse("8080:0", w, &p, &err), err, "container port \"0\"");
  assert_err(bivy_net_publish_parse("8080", w, &p, &err), err, "expected [ADDR:]HOSTPORT:CTRPORT");
  assert_err(bivy_net_publish_parse("1:2:3:4", w, &p, &err), err, "expected");
  assert_err(bivy_net_publish_parse("8080:80/sctp", w, &p, &err), err, "unknown protocol \"sctp\"");
  assert_err(bivy_net_publish_parse("1.2.3:80:80", w, &p, &err), err, "bad host address \"1.2.3\"");
  assert_err(bivy_net_publish_parse("a:80", w, &p, &err), err, "annotations.org.bivy.publish: \"a:80\"");
}

Test(netns_publish, lists_and_clashes) {
  _cleanup_error_ bivy_error_t err = NULL;
  _cleanup_free_ struct bivy_net_publish *v = NULL;
  size_t n;
  cr_assert_eq(bivy_net_publish_parse_list("8080:80, 8080:80/udp,127.0.0.1:9000:90", "x", &v, &n, &err), 0);
  cr_assert_eq(n, 3);
  cr_assert_eq(v[1].proto, IPPROTO_UDP);
  free(steal_pointer(&v));
  cr_assert_eq(bivy_net_publish_parse_list("127.0.0.1:80:80,127.0.0.2:80:81", "x", &v, &n, &err), 0);
  cr_assert_eq(n, 2);
  free(steal_pointer(&v));
  assert_err(bivy_net_publish_parse_list("8080:80,8080:81", "x", &v, &n, &err), err, "host port 8080/tcp is published twice");
  assert_err(bivy_net_publish_parse_list("8080:80,127.0.0.1:8080:81", "x", &v, &n, &err), err, "published twice");
  assert_err(bivy_net_publish_parse_list("8080:80,x", "x", &v, &n, &err), err, "\"x\"");
  cr_assert_null(v);
  cr_assert_eq(bivy_net_publish_parse_list("", "x", &v, &n, &err), 0);
  cr_assert_eq(n, 0);
}

Test(netns_subnet, parse_and_math) {
  _cleanup_error_ bivy_error_t err = NULL;
  struct bivy_net_subnet s, t;
  char buf[24];
  cr_assert_eq(bivy_net_subnet_parse("10.207.0.0/24", &s, &err), 0);
  cr_assert_eq(s.addr, ip("10.207.0.0"));
  cr_assert_eq(s.prefix, 24);
  cr_assert_str_eq(bivy_net_subnet_str(&s, buf, sizeof buf), "10.207.0.0/24");
  cr_assert_eq(bivy_net_subnet_broadcast(&s), ip("10.207.0.255"));
  cr_assert(bivy_net_subnet_contains(&s, ip("10.207.0.77")));
  cr_assert(!bivy_net_subnet_contains(&s, ip("10.207.1.1")));
  cr_assert_eq(bivy_net_subnet_parse("10.0.0.0/8", &t, &err), 0);
  cr_assert(bivy_net_subnet_overlap(&s, &t));
  cr_assert(bivy_net_subnet_overlap(&t, &s));
  cr_assert_eq(bivy_net_subnet_parse("10.207.1.0/24", &t, &err), 0);
  cr_assert(!bivy_net_subnet_overlap(&s, &t));
  cr_assert_eq(bivy_net_subnet_parse("10.207.0.128/25", &t, &err), 0);
  cr_assert(bivy_net_subnet_overlap(&s, &t));
  cr_assert_eq(bivy_net_subnet_mask(0), 0);
  cr_assert_eq(bivy_net_subnet_mask(32), 0xffffffffu);
  assert_err(bivy_net_subnet_parse("10.207.0.1/24", &s, &err), err, "host bits are set (did you mean 10.207.0.0/24?)");
  assert_err(bivy_net_subnet_parse("10.207.0.0", &s, &err), err, "expected A.B.C.D/PREFIX");
  assert_err(bivy_net_subnet_parse("10.207.0.0/30", &s, &err), err, "prefix length must be 8..29");
  assert_err(bivy_net_subnet_parse("10.0.0.0/7", &s, &err), err, "8..29");
  assert_err(bivy_net_subnet_parse("10.0.0.0/x", &s, &err), err, "bad prefix length");
  assert_err(bivy_net_subnet_parse("300.0.0.0/8", &s, &err), err, "bad address");
  assert_err(bivy_net_subnet_parse("127.0.0.0/8", &s, &err), err, "not a usable unicast range");
  assert_err(bivy_net_subnet_parse("224.0.0.0/8", &s, &err), err, "not a usable unicast range");
}

Test(netns_subnet, mac_and_veth_name) {
  uint8_t mac[6];
  bivy_net_mac_from_ip(ip("10.207.0.2"), mac);
  uint8_t want[6] = {0x02, 0x62, 10, 207, 0, 2};
  cr_assert_arr_eq(mac, want, 6);
  char name[IFNAMSIZ];
  bivy_net_veth_name(ip("10.207.0.2"), name);
  cr_assert_str_eq(name, "bv0acf0002");
}

static char *mkroot(void) {
  char *root = strdup("/tmp/bivy-unit-netns.XXXXXX");
  cr_assert_not_null(mkdtemp(root));
  return root;
}

static void rmroot(char *root) {
  _cleanup_error_ bivy_error_t err = NULL;
  bivy_rm_rf(root, &err);
  free(root);
}

Test(netns_ipam, define_networks_and_refuse_overlaps) {
  char *root = mkroot();
  _cleanup_error_ bivy_error_t err = NULL;
  struct bivy_net_network a, b;
  struct bivy_net_subnet s;
  bool created;
  cr_assert_eq(bivy_net_network_ensure(root, "bivy0", NULL, 0, &a, &created, &err), 0);
  cr_assert(created);
  cr_assert_eq(a.subnet.addr, ip("10.207.0.0"));
  cr_assert_eq(a.gateway, ip("10.207.0.1"));
  cr_assert_eq(a.mtu, 1500);
  cr_assert_eq(bivy_net_network_ensure(root, "bivy0", NULL, 0, &a, &created, &err), 0);
  cr_assert(!created);
  /* another name gets the next free /24 */
  cr_assert_eq(bivy_net_network_ensure(root, "web", NULL, 0, &b, &created, &err), 0);
  cr_assert_eq(b.subnet.addr, ip("10.207.1.0"));
  bivy_net_subnet_parse("10.207.0.0/16", &s, &err);
  assert_err(bivy_net_network_ensure(root, "big", &s, 0, &b, &created, &err), err,
             "subnet 10.207.0.0/16 overlaps network \"bivy0\" (10.207.0.0/24)");
  bivy_net_subnet_parse("10.99.0.0/24", &s, &err);
  assert_err(bivy_net_network_ensure(root, "bivy0", &s, 0, &b, &created, &err), err,
             "network \"bivy0\" already has subnet 10.207.0.0/24, not 10.99.0.0/24");
  cr_assert_eq(bivy_net_network_ensure(root, "other", &s, 9000, &b, &created, &err), 0);
  cr_assert_eq(bivy_net_network_load(root, "other", &b, &err), 0);
  cr_assert_eq(b.mtu, 9000);
  _cleanup_strv_ char **names = NULL;
  cr_assert_eq(bivy_net_network_list(root, &names, &err), 0);
  cr_assert_str_eq(names[0], "bivy0");
  cr_assert_str_eq(names[1], "other");
  cr_assert_str_eq(names[2], "web");
  cr_assert_null(names[3]);
  cr_assert_eq(bivy_net_network_remove(root, "web", &err), 0);
  assert_err(bivy_net_network_load(root, "web", &b, &err), err, "network \"web\" does not exist");
  rmroot(root);
}

Test(netns_ipam, leases_reuse_release_and_exhaust) {
  char *root = mkroot();
  _cleanup_error_ bivy_error_t err = NULL;
  struct bivy_net_network n;
  struct bivy_net_subnet s;
  bool created;
  bivy_net_subnet_parse("10.50.0.0/29", &s, &err); /* .1 gateway, .2-.6 hosts */
  cr_assert_eq(bivy_net_network_ensure(root, "small", &s, 0, &n, &created, &err), 0);
  uint32_t a, b, c;
  cr_assert_eq(bivy_net_lease_acquire(root, &n, "a", &a, &err), 0);
  cr_assert_eq(a, ip("10.50.0.2"));
  cr_assert_eq(bivy_net_lease_acquire(root, &n, "a", &c, &err), 0, "idempotent");
  cr_assert_eq(c, a);
  cr_assert_eq(bivy_net_lease_acquire(root, &n, "b", &b, &err), 0);
  cr_assert_eq(b, ip("10.50.0.3"));
  cr_assert_eq(bivy_net_lease_release(root, "small", "a", &err), 0);
  cr_assert_eq(bivy_net_lease_release(root, "small", "nobody", &err), 0);
  /* a newcomer does not take a's old address while fresh ones remain */
  cr_assert_eq(bivy_net_lease_acquire(root, &n, "c", &c, &err), 0);
  cr_assert_eq(c, ip("10.50.0.4"));
  /* a comes back and gets its address again */
  cr_assert_eq(bivy_net_lease_acquire(root, &n, "a", &a, &err), 0);
  cr_assert_eq(a, ip("10.50.0.2"));
  uint32_t d, e, f;
  cr_assert_eq(bivy_net_lease_acquire(root, &n, "d", &d, &err), 0);
  cr_assert_eq(bivy_net_lease_acquire(root, &n, "e", &e, &err), 0);
  cr_assert_eq(e, ip("10.50.0.6"));
  assert_err(bivy_net_lease_acquire(root, &n, "f", &f, &err), err, "network \"small\": no free address in 10.50.0.0/29");
  /* when only used addresses remain, a newcomer takes one (and it stops being b's) */
  cr_assert_eq(bivy_net_lease_release(root, "small", "b", &err), 0);
  cr_assert_eq(bivy_net_lease_acquire(root, &n, "f", &f, &err), 0);
  cr_assert_eq(f, ip("10.50.0.3"));
  cr_assert_eq(bivy_net_lease_release(root, "small", "f", &err), 0);
  cr_assert_eq(bivy_net_lease_acquire(root, &n, "b", &b, &err), 0);
  _cleanup_json_ json_t *j = NULL;
  cr_assert_eq(bivy_net_leases_load(root, "small", &j, &err), 0);
  cr_assert_eq(json_object_size(json_object_get(j, "leases")), 5);
  rmroot(root);
}

Test(netns_ipam, parallel_leases_are_distinct) {
  char *root = mkroot();
  _cleanup_error_ bivy_error_t err = NULL;
  struct bivy_net_network n;
  bool created;
  cr_assert_eq(bivy_net_network_ensure(root, "bivy0", NULL, 0, &n, &created, &err), 0);
  enum { N = 30 };
  pid_t pids[N];
  for (int i = 0; i < N; i++) {
    pids[i] = fork();
    cr_assert_geq(pids[i], 0);
    if (pids[i] == 0) {
      bivy_error_t e = NULL;
      char id[16];
      snprintf(id, sizeof id, "c%d", i);
      int lock = bivy_net_store_lock(root, &e);
      uint32_t a;
      int r = lock < 0 ? lock : bivy_net_lease_acquire(root, &n, id, &a, &e);
      _exit(r < 0 ? 1 : 0);
    }
  }
  for (int i = 0; i < N; i++) {
    int st;
    cr_assert_eq(waitpid(pids[i], &st, 0), pids[i]);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  _cleanup_json_ json_t *j = NULL;
  cr_assert_eq(bivy_net_leases_load(root, "bivy0", &j, &err), 0);
  json_t *leases = json_object_get(j, "leases");
  cr_assert_eq(json_object_size(leases), N, "30 leases, 30 distinct addresses (keys)");
  _cleanup_json_ json_t *ids = json_object();
  const char *k;
  json_t *v;
  json_object_foreach(leases, k, v) json_object_set_new(ids, json_string_value(v), json_true());
  cr_assert_eq(json_object_size(ids), N, "30 distinct owners");
  rmroot(root);
}

/* ---- namespace resolution and annotation validation (no network changes) ---- */

struct cfgbox {
  struct bivy_annotation ann[3];
  struct bivy_namespace ns;
  struct bivy_config cfg;
};

static void mkcfg(struct cfgbox *b, bool netns, const char *mode, const char *publish) {
  memset(b, 0, sizeof(*b));
  b->ns.type = BIVY_NS_NET;
  b->cfg.annotations = b->ann;
  b->cfg.namespaces = &b->ns;
  b->cfg.n_namespaces = netns ? 1 : 0;
  if (mode) b->ann[b->cfg.n_annotations++] = (struct bivy_annotation){(char *)BIVY_NET_ANNOTATION, (char *)mode};
  if (publish) b->ann[b->cfg.n_annotations++] = (struct bivy_annotation){(char *)BIVY_PUBLISH_ANNOTATION, (char *)publish};
}

Test(netns_config, ns_path_per_mode) {
  _cleanup_error_ bivy_error_t err = NULL;
  struct cfgbox b;
  char *path = NULL;
  mkcfg(&b, true, NULL, NULL);
  cr_assert_eq(bivy_net_ns_path("/nonexistent", &b.cfg, &path, &err), 0);
  cr_assert_null(path);
  mkcfg(&b, true, "bridge", "8080:80");
  cr_assert_eq(bivy_net_ns_path("/nonexistent", &b.cfg, &path, &err), 0);
  cr_assert_null(path);
  mkcfg(&b, true, "ns:/proc/self/ns/net", NULL);
  cr_assert_eq(bivy_net_ns_path("/nonexistent", &b.cfg, &path, &err), 0);
  cr_assert_str_eq(path, "/proc/self/ns/net");
  free(steal_pointer(&path));
  mkcfg(&b, true, "ns:/proc/self/ns/mnt", NULL);
  assert_err(bivy_net_ns_path("/nonexistent", &b.cfg, &path, &err), err, "ns:/proc/self/ns/mnt: not a network namespace");
  mkcfg(&b, true, "ns:/nonexistent/x", NULL);
  assert_err(bivy_net_ns_path("/nonexistent", &b.cfg, &path, &err), err, "ns:/nonexistent/x: No such file");
  /* a config that already names a netns path is the caller's business */
  mkcfg(&b, true, "slirp", NULL);
  b.ns.path = (char *)"/run/netns/cni-1";
  cr_assert_eq(bivy_net_ns_path("/nonexistent", &b.cfg, &path, &err), 0);
  cr_assert_null(path);
}

Test(netns_config, container_mode_resolves_live_pid) {
  char *root = mkroot();
  _cleanup_error_ bivy_error_t err = NULL;
  struct cfgbox b;
  char *path = NULL, *dir = NULL, *st = NULL;
  mkcfg(&b, true, "container:web", NULL);
  assert_err(bivy_net_ns_path(root, &b.cfg, &path, &err), err, "container:web: no such container");
  cr_assert_geq(asprintf(&dir, "%s/web", root), 0);
  cr_assert_geq(asprintf(&st, "%s/state.json", dir), 0);
  mkdir(dir, 0700);
  FILE *f = fopen(st, "w");
  fprintf(f, "{\"id\":\"web\",\"pid\":%d}", getpid());
  fclose(f);
  cr_assert_eq(bivy_net_ns_path(root, &b.cfg, &path, &err), 0);
  char want[64];
  snprintf(want, sizeof want, "/proc/%d/ns/net", getpid());
  cr_assert_str_eq(path, want);
  free(steal_pointer(&path));
  /* a recorded start time that does not match: the pid was reused */
  f = fopen(st, "w");
  fprintf(f, "{\"id\":\"web\",\"pid\":%d,\"pid_start\":1}", getpid());
  fclose(f);
  assert_err(bivy_net_ns_path(root, &b.cfg, &path, &err), err, "container:web: container is not running");
  pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, NULL, 0);
  f = fopen(st, "w");
  fprintf(f, "{\"id\":\"web\",\"pid\":%d}", child);
  fclose(f);
  assert_err(bivy_net_ns_path(root, &b.cfg, &path, &err), err, "container is not running");
  free(dir);
  free(st);
  rmroot(root);
}

Test(netns_config, annotation_consistency) {
  _cleanup_error_ bivy_error_t err = NULL;
  struct cfgbox b;
  char *path = NULL;
  mkcfg(&b, true, "host", NULL);
  assert_err(bivy_net_ns_path("/x", &b.cfg, &path, &err), err, "host mode, but linux.namespaces has a network namespace");
  mkcfg(&b, false, "bridge", NULL);
  assert_err(bivy_net_ns_path("/x", &b.cfg, &path, &err), err, "mode bridge needs a network namespace");
  mkcfg(&b, true, "none", "8080:80");
  assert_err(bivy_net_ns_path("/x", &b.cfg, &path, &err), err, "annotations.org.bivy.publish: only for bridge networking");
  mkcfg(&b, true, NULL, "8080:80");
  assert_err(bivy_net_ns_path("/x", &b.cfg, &path, &err), err, "needs annotations.org.bivy.net=bridge");
  mkcfg(&b, true, "bridge", "99999:80");
  assert_err(bivy_net_ns_path("/x", &b.cfg, &path, &err), err, "host port \"99999\" is not a port number");
  mkcfg(&b, true, "bridge:no/slash", NULL);
  assert_err(bivy_net_ns_path("/x", &b.cfg, &path, &err), err, "bad bridge name");
  b.ann[b.cfg.n_annotations++] = (struct bivy_annotation){(char *)BIVY_NET_ANNOTATION, (char *)"bridge"};
  b.ann[0] = (struct bivy_annotation){(char *)BIVY_SUBNET_ANNOTATION, (char *)"10.1.2.3/24"};
  assert_err(bivy_net_ns_path("/x", &b.cfg, &path, &err), err, "annotations.org.bivy.subnet: subnet \"10.1.2.3/24\": host bits");
}

Test(netns_config, setup_host_and_refuse_own_netns) {
  char *root = mkroot();
  _cleanup_error_ bivy_error_t err = NULL;
  struct cfgbox b;
  json_t *st = NULL;
  mkcfg(&b, true, NULL, NULL);
  cr_assert_eq(bivy_net_setup(root, "c", &b.cfg, getpid(), &st, &err), 0);
  cr_assert_null(st);
  mkcfg(&b, false, "host", NULL);
  cr_assert_eq(bivy_net_setup(root, "c", &b.cfg, getpid(), &st, &err), 0);
  cr_assert_str_eq(json_string_value(json_object_get(st, "mode")), "host");
  cr_assert_eq(bivy_net_teardown(root, "c", st, &err), 0);
  json_decref(st);
  st = NULL;
  /* a "container" sharing our own netns must never be rewired (it would be the host's) */
  mkcfg(&b, true, "bridge", NULL);
  assert_err(bivy_net_setup(root, "c", &b.cfg, getpid(), &st, &err), err, "has no network namespace of its own");
  cr_assert_null(st);
  struct stat sb;
  char *store = NULL;
  cr_assert_geq(asprintf(&store, "%s/net", root), 0);
  cr_assert_neq(stat(store, &sb), 0, "nothing left behind");
  free(store);
  cr_assert_eq(bivy_net_teardown(root, "c", NULL, &err), 0);
  rmroot(root);
}
