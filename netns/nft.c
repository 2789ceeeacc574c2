/* Port publishing and masquerade through libnftables, in bivy's own table:
 *
 *   table ip bivy {
 *     map pub  { ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; interval }
 *     set masq { ipv4_addr; interval }          -- bridge subnets
 *     chain prerouting/output: local destinations dnat through @pub
 *     chain postrouting: masquerade @masq going elsewhere (and hairpin dnat)
 *   }
 *
 * A published port is one map element "HOSTADDR . PROTO . HOSTPORT : CTRIP . CTRPORT"
 * (HOSTADDR 0.0.0.0/0 for any address). The map is an interval map, so the kernel itself
 * refuses a second element that overlaps (same port on any/that address): `create element`
 * is the "port already published" check, race-free across concurrent bivy processes. */
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netns/netns-internal.h"
#include "runtime/cleanup.h"

/* libnftables is loaded on first use: it drags in libxtables, libgmp, libnftnl and libmnl,
 * which would otherwise cost every `bivy` start their loading time. */
static struct {
  struct nft_ctx *(*ctx_new)(uint32_t);
  void (*ctx_free)(struct nft_ctx *);
  int (*buffer_output)(struct nft_ctx *);
  int (*buffer_error)(struct nft_ctx *);
  int (*run_cmd)(struct nft_ctx *, const char *);
  const char *(*output)(struct nft_ctx *);
  const char *(*error)(struct nft_ctx *);
} nft;

static int nft_load(char **errtext) {
  if (nft.run_cmd) return 0;
  void *h = dlopen("libnftables.so.1", RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) {
    if (errtext) *errtext = strdup(dlerror() ?: "cannot load libnftables.so.1 (install libnftables1)");
    return -1;
  }
  nft.ctx_new = (struct nft_ctx * (*)(uint32_t)) dlsym(h, "nft_ctx_new");
  nft.ctx_free = (void (*)(struct nft_ctx *))dlsym(h, "nft_ctx_free");
  nft.buffer_output = (int (*)(struct nft_ctx *))dlsym(h, "nft_ctx_buffer_output");
  nft.buffer_error = (int (*)(struct nft_ctx *))dlsym(h, "nft_ctx_buffer_error");
  nft.output = (const char *(*)(struct nft_ctx *))dlsym(h, "nft_ctx_get_output_buffer");
  nft.error = (const char *(*)(struct nft_ctx *))dlsym(h, "nft_ctx_get_error_buffer");
  int (*run)(struct nft_ctx *, const char *) = (int (*)(struct nft_ctx *, const char *))dlsym(h, "nft_run_cmd_from_buffer");
  if (!nft.ctx_new || !nft.ctx_free || !nft.buffer_output || !nft.buffer_error || !nft.output || !nft.error || !run) {
    if (errtext) *errtext = strdup("libnftables.so.1 lacks an expected symbol");
    return -1;
  }
  nft.run_cmd = run;
  return 0;
}

static void nftp(struct nft_ctx **c) {
  if (*c) nft.ctx_free(*c);
}

/* Runs cmd; on failure *errtext (if given) gets nft's message. Returns 0 or -1.
 * libnftables opens its netlink socket without SOCK_CLOEXEC: the context lives for this one
 * command only, so that fd never outlives the call (and cannot leak into a container). */
static int run_raw(const char *cmd, char **out, char **errtext) {
  if (nft_load(errtext) < 0) return -1;
  _cleanup_(nftp) struct nft_ctx *ctx = nft.ctx_new(NFT_CTX_DEFAULT);
  if (ctx == NULL) return -ENOMEM;
  if (nft.buffer_output(ctx) < 0 || nft.buffer_error(ctx) < 0) return -ENOMEM;
  int r = nft.run_cmd(ctx, cmd);
  if (out) *out = strdup(nft.output(ctx) ?: "");
  if (r != 0 && errtext) {
    const char *e = nft.error(ctx) ?: "";
    /* first line is enough: the rest repeats the command with a caret */
    size_t n = strcspn(e, "\n");
    *errtext = strndup(e, n);
  }
  return r == 0 ? 0 : -1;
}

int bivy_nft_run(const char *cmd, char **out, bivy_error_t *err) {
  _cleanup_free_ char *e = NULL;
  if (run_raw(cmd, out, &e) < 0) {
    int code = e && strstr(e, "File exists") ? EEXIST : e && strstr(e, "No such file") ? ENOENT : EIO;
    return bivy_error(err, code, "nftables: %s", e && *e ? e : "command failed");
  }
  return 0;
}

static const char table_script[] =
    "create table ip " BIVY_NFT_TABLE "\n"
    "add map ip bivy pub { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; flags interval; }\n"
    "add set ip bivy masq { type ipv4_addr; flags interval; }\n"
    "add chain ip bivy prerouting { type nat hook prerouting priority dstnat; policy accept; }\n"
    /* only connections to this host's own addresses are published, not traffic passing through */
    "add rule ip bivy prerouting meta l4proto { tcp, udp } fib daddr type local "
    "dnat ip to ip daddr . meta l4proto . th dport map @pub\n"
    "add chain ip bivy output { type nat hook output priority -100; policy accept; }\n"
    "add rule ip bivy output meta l4proto { tcp, udp } fib daddr type local "
    "dnat ip to ip daddr . meta l4proto . th dport map @pub\n"
    "add chain ip bivy postrouting { type nat hook postrouting priority srcnat; policy accept; }\n"
    "add rule ip bivy postrouting ip saddr @masq ip daddr != @masq masquerade\n"
    /* hairpin: a container reaching a published port of its own bridge must see replies come back via the host */
    "add rule ip bivy postrouting ip saddr @masq ct status dnat masquerade\n";

int bivy_nft_ensure(bivy_error_t *err) {
  if (run_raw("list map ip " BIVY_NFT_TABLE " pub", NULL, NULL) == 0) return 0;
  _cleanup_free_ char *e = NULL;
  /* "create table" makes the whole transaction fail if a concurrent bivy won the race */
  if (run_raw(table_script, NULL, &e) == 0) return 0;
  if (run_raw("list map ip " BIVY_NFT_TABLE " pub", NULL, NULL) == 0) return 0;
  return bivy_error(err, EIO, "nftables: create table ip %s: %s", BIVY_NFT_TABLE, e && *e ? e : "failed");
}

static int masq_cmd(const char *verb, const struct bivy_net_subnet *s, bivy_error_t *err) {
  char sn[24];
  _cleanup_free_ char *cmd = NULL;
  if (asprintf(&cmd, "%s element ip " BIVY_NFT_TABLE " masq { %s }", verb, bivy_net_subnet_str(s, sn, sizeof sn)) < 0)
    return -ENOMEM;
  return bivy_nft_run(cmd, NULL, err);
}

int bivy_nft_masq_add(const struct bivy_net_subnet *s, bivy_error_t *err) {
  int r = bivy_nft_ensure(err);
  if (r < 0) return r;
  r = masq_cmd("add", s, err);
  if (r == -EEXIST) {
    bivy_error_release(err);
    return 0;
  }
  return r;
}

int bivy_nft_masq_del(const struct bivy_net_subnet *s, bivy_error_t *err) {
  if (run_raw("list set ip " BIVY_NFT_TABLE " masq", NULL, NULL) < 0) return 0;
  int r = masq_cmd("delete", s, err);
  if (r == -ENOENT) bivy_error_release(err);
  else if (r < 0) return r;
  /* the last network gone and nothing published: leave no bivy table behind */
  _cleanup_free_ char *masq = NULL, *pub = NULL;
  if (run_raw("list set ip " BIVY_NFT_TABLE " masq", &masq, NULL) == 0 &&
      run_raw("list map ip " BIVY_NFT_TABLE " pub", &pub, NULL) == 0 && masq && pub &&
      !strstr(masq, "elements") && !strstr(pub, "elements"))
    run_raw("delete table ip " BIVY_NFT_TABLE, NULL, NULL);
  return 0;
}

static void pub_key(const struct bivy_net_publish *p, char *buf, size_t len) {
  char a[16];
  snprintf(buf, len, "%s . %s . %u", p->any_addr ? "0.0.0.0/0" : bivy_net_ip_str(p->host_addr, a, sizeof a),
           bivy_net_proto_name(p->proto), p->host_port);
}

static void pub_desc(const struct bivy_net_publish *p, char *buf, size_t len) {
  char a[16];
  snprintf(buf, len, "%s%s%u/%s", p->any_addr ? "" : bivy_net_ip_str(p->host_addr, a, sizeof a),
           p->any_addr ? "" : ":", p->host_port, bivy_net_proto_name(p->proto));
}

int bivy_nft_publish(const struct bivy_net_publish *p, size_t n, uint32_t ctr_ip, bivy_error_t *err) {
  if (n == 0) return 0;
  char ip[16], key[64];
  bivy_net_ip_str(ctr_ip, ip, sizeof ip);
  _cleanup_free_ char *cmd = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&cmd, &len);
  if (f == NULL) return -ENOMEM;
  /* "create" (not "add"): an element that exists or overlaps is an error, not a silent takeover */
  fprintf(f, "create element ip " BIVY_NFT_TABLE " pub { ");
  for (size_t i = 0; i < n; i++) {
    pub_key(&p[i], key, sizeof key);
    fprintf(f, "%s%s : %s . %u", i ? ", " : "", key, ip, p[i].ctr_port);
  }
  fprintf(f, " }");
  if (fclose(f) != 0) return -ENOMEM;
  _cleanup_free_ char *e = NULL;
  if (run_raw(cmd, NULL, &e) == 0) return 0;
  /* first publish on this host: the table does not exist yet */
  if (run_raw("list map ip " BIVY_NFT_TABLE " pub", NULL, NULL) < 0) {
    int r = bivy_nft_ensure(err);
    if (r < 0) return r;
    free(steal_pointer(&e));
    if (run_raw(cmd, NULL, &e) == 0) return 0;
  }
  for (size_t i = 0; i < n; i++) {
    _cleanup_free_ char *get = NULL;
    pub_key(&p[i], key, sizeof key);
    if (asprintf(&get, "get element ip " BIVY_NFT_TABLE " pub { %s }", key) < 0) return -ENOMEM;
    if (run_raw(get, NULL, NULL) == 0) {
      char d[48];
      pub_desc(&p[i], d, sizeof d);
      return bivy_error(err, EADDRINUSE, "annotations.%s: host port %s is already published", BIVY_PUBLISH_ANNOTATION, d);
    }
  }
  return bivy_error(err, EIO, "nftables: publish ports: %s", e && *e ? e : "failed");
}

int bivy_nft_unpublish(const struct bivy_net_publish *p, size_t n, uint32_t ctr_ip, bivy_error_t *err) {
  char ip[16], key[64];
  bivy_net_ip_str(ctr_ip, ip, sizeof ip);
  int ret = 0;
  for (size_t i = 0; i < n; i++) {
    _cleanup_free_ char *get = NULL, *del = NULL, *out = NULL, *mine = NULL;
    pub_key(&p[i], key, sizeof key);
    if (asprintf(&get, "get element ip " BIVY_NFT_TABLE " pub { %s }", key) < 0 ||
        asprintf(&del, "delete element ip " BIVY_NFT_TABLE " pub { %s }", key) < 0 ||
        asprintf(&mine, "{ %s : %s . %u }", key, ip, p[i].ctr_port) < 0)
      return -ENOMEM;
    /* delete only our own element: the port may since belong to another container (a missing
     * table or element fails the get: nothing to do) */
    if (run_raw(get, &out, NULL) < 0 || out == NULL || strstr(out, mine) == NULL) continue;
    int r = bivy_nft_run(del, NULL, err);
    if (r == -ENOENT) bivy_error_release(err);
    else if (r < 0 && ret == 0) ret = r;
  }
  return ret;
}
