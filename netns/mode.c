/* Parsing of the network annotations and IPv4 subnet math (pure: no system calls). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netns/netns-internal.h"
#include "runtime/cleanup.h"
#include "runtime/util.h"

const char *bivy_net_kind_name(enum bivy_net_kind k) {
  switch (k) {
    case BIVY_NET_NONE: return "none";
    case BIVY_NET_HOST: return "host";
    case BIVY_NET_BRIDGE: return "bridge";
    case BIVY_NET_CONTAINER: return "container";
    case BIVY_NET_NS: return "ns";
  }
  return "?";
}

bool bivy_net_name_valid(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n >= IFNAMSIZ) return false;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '-' && c != '_'))) return false;
  }
  return true;
}

void bivy_net_mode_clear(struct bivy_net_mode *m) {
  free(m->arg);
  m->arg = NULL;
}

int bivy_net_mode_parse(const char *s, struct bivy_net_mode *out, bivy_error_t *err) {
  const char *where = "annotations." BIVY_NET_ANNOTATION;
  memset(out, 0, sizeof(*out));
  if (strcmp(s, "none") == 0) {
    out->kind = BIVY_NET_NONE;
    return 0;
  }
  if (strcmp(s, "host") == 0) {
    out->kind = BIVY_NET_HOST;
    return 0;
  }
  if (strcmp(s, "bridge") == 0 || strncmp(s, "bridge:", 7) == 0) {
    const char *name = s[6] == ':' ? s + 7 : BIVY_NET_DEFAULT_BRIDGE;
    if (!bivy_net_name_valid(name))
      return bivy_error(err, EINVAL,
                        "%s: bad bridge name \"%s\" (1-%d characters of A-Z a-z 0-9 _ -, starting "
                        "with a letter or digit)",
                        where, name, IFNAMSIZ - 1);
    out->kind = BIVY_NET_BRIDGE;
    strcpy(out->bridge, name);
    return 0;
  }
  if (strncmp(s, "container:", 10) == 0) {
    if (!bivy_id_valid(s + 10))
      return bivy_error(err, EINVAL, "%s: bad container id \"%s\"", where, s + 10);
    out->kind = BIVY_NET_CONTAINER;
    out->arg = strdup(s + 10);
    return out->arg ? 0 : -ENOMEM;
  }
  if (strncmp(s, "ns:", 3) == 0) {
    if (s[3] != '/') return bivy_error(err, EINVAL, "%s: ns:PATH needs an absolute path, got \"%s\"", where, s + 3);
    out->kind = BIVY_NET_NS;
    out->arg = strdup(s + 3);
    return out->arg ? 0 : -ENOMEM;
  }
  return bivy_error(err, EINVAL,
                    "%s: unknown mode \"%s\" (none, host, bridge[:NAME], container:ID or ns:PATH)",
                    where, s);
}

uint32_t bivy_net_subnet_mask(unsigned prefix) {
  return prefix == 0 ? 0 : (uint32_t)(0xffffffffu << (32 - prefix));
}

uint32_t bivy_net_subnet_broadcast(const struct bivy_net_subnet *s) {
  return s->addr | ~bivy_net_subnet_mask(s->prefix);
}

bool bivy_net_subnet_contains(const struct bivy_net_subnet *s, uint32_t ip) {
  return (ip & bivy_net_subnet_mask(s->prefix)) == s->addr;
}

bool bivy_net_subnet_overlap(const struct bivy_net_subnet *a, const struct bivy_net_subnet *b) {
  unsigned p = a->prefix < b->prefix ? a->prefix : b->prefix;
  uint32_t m = bivy_net_subnet_mask(p);
  return (a->addr & m) == (b->addr & m);
}

int bivy_net_ip_parse(const char *s, uint32_t *out) {
  struct in_addr a;
  if (inet_pton(AF_INET, s, &a) != 1) return -EINVAL;
  *out = ntohl(a.s_addr);
  return 0;
}

const char *bivy_net_ip_str(uint32_t ip, char *buf, size_t len) {
  snprintf(buf, len, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
  return buf;
}

const char *bivy_net_subnet_str(const struct bivy_net_subnet *s, char *buf, size_t len) {
  char ip[16];
  snprintf(buf, len, "%s/%u", bivy_net_ip_str(s->addr, ip, sizeof ip), s->prefix);
  return buf;
}

int bivy_net_subnet_parse(const char *s, struct bivy_net_subnet *out, bivy_error_t *err) {
  const char *slash = strchr(s, '/');
  if (slash == NULL || slash == s || slash - s > 15)
    return bivy_error(err, EINVAL, "subnet \"%s\": expected A.B.C.D/PREFIX", s);
  char ip[16];
  memcpy(ip, s, (size_t)(slash - s));
  ip[slash - s] = '\0';
  uint32_t addr;
  if (bivy_net_ip_parse(ip, &addr) < 0) return bivy_error(err, EINVAL, "subnet \"%s\": bad address \"%s\"", s, ip);
  int64_t p;
  if (bivy_parse_i64(slash + 1, &p) < 0 || p < 0 || p > 32)
    return bivy_error(err, EINVAL, "subnet \"%s\": bad prefix length \"%s\"", s, slash + 1);
  /* a bridge subnet needs the network, gateway, at least one container and broadcast */
  if (p < 8 || p > 29)
    return bivy_error(err, EINVAL, "subnet \"%s\": prefix length must be 8..29", s);
  if (addr & ~bivy_net_subnet_mask((unsigned)p))
    return bivy_error(err, EINVAL, "subnet \"%s\": host bits are set (did you mean %s/%u?)", s,
                      bivy_net_ip_str(addr & bivy_net_subnet_mask((unsigned)p), ip, sizeof ip), (unsigned)p);
  /* loopback, multicast and reserved ranges cannot carry a bridge */
  if ((addr >> 24) == 127 || (addr >> 24) == 0 || (addr >> 28) >= 14)
    return bivy_error(err, EINVAL, "subnet \"%s\": not a usable unicast range", s);
  out->addr = addr;
  out->prefix = (unsigned)p;
  return 0;
}

void bivy_net_mac_from_ip(uint32_t ip, uint8_t mac[6]) {
  mac[0] = 0x02; /* locally administered, unicast */
  mac[1] = 0x62; /* 'b' */
  mac[2] = (uint8_t)(ip >> 24);
  mac[3] = (uint8_t)(ip >> 16);
  mac[4] = (uint8_t)(ip >> 8);
  mac[5] = (uint8_t)ip;
}

void bivy_net_veth_name(uint32_t ip, char name[IFNAMSIZ]) { snprintf(name, IFNAMSIZ, "bv%08x", ip); }

const char *bivy_net_proto_name(int proto) { return proto == IPPROTO_UDP ? "udp" : "tcp"; }

static int parse_port(const char *s, const char *what, const char *where, const char *spec, uint16_t *out,
                      bivy_error_t *err) {
  int64_t v;
  if (bivy_parse_i64(s, &v) < 0 || v < 1 || v > 65535)
    return bivy_error(err, EINVAL, "%s: \"%s\": %s \"%s\" is not a port number (1-65535)", where, spec, what, s);
  *out = (uint16_t)v;
  return 0;
}

int bivy_net_publish_parse(const char *s, const char *where, struct bivy_net_publish *out, bivy_error_t *err) {
  memset(out, 0, sizeof(*out));
  out->any_addr = true;
  out->proto = IPPROTO_TCP;
  _cleanup_free_ char *buf = strdup(s);
  if (buf == NULL) return -ENOMEM;
  char *slash = strchr(buf, '/');
  if (slash) {
    *slash = '\0';
    if (strcmp(slash + 1, "tcp") == 0) out->proto = IPPROTO_TCP;
    else if (strcmp(slash + 1, "udp") == 0) out->proto = IPPROTO_UDP;
    else return bivy_error(err, EINVAL, "%s: \"%s\": unknown protocol \"%s\" (tcp or udp)", where, s, slash + 1);
  }
  char *parts[4];
  size_t n = 0;
  for (char *p = buf, *c; n < 4; p = c + 1) {
    parts[n++] = p;
    c = strchr(p, ':');
    if (c == NULL) break;
    *c = '\0';
  }
  if (n < 2 || n > 3)
    return bivy_error(err, EINVAL, "%s: \"%s\": expected [ADDR:]HOSTPORT:CTRPORT[/tcp|udp]", where, s);
  if (n == 3) {
    if (bivy_net_ip_parse(parts[0], &out->host_addr) < 0)
      return bivy_error(err, EINVAL, "%s: \"%s\": bad host address \"%s\" (IPv4 expected)", where, s, parts[0]);
    out->any_addr = out->host_addr == 0;
  }
  int r = parse_port(parts[n - 2], "host port", where, s, &out->host_port, err);
  if (r < 0) return r;
  return parse_port(parts[n - 1], "container port", where, s, &out->ctr_port, err);
}

/* Would both entries claim the same host port? (any address overlaps every address) */
static bool publish_clash(const struct bivy_net_publish *a, const struct bivy_net_publish *b) {
  return a->proto == b->proto && a->host_port == b->host_port &&
         (a->any_addr || b->any_addr || a->host_addr == b->host_addr);
}

int bivy_net_publish_parse_list(const char *s, const char *where, struct bivy_net_publish **out, size_t *n,
                                bivy_error_t *err) {
  *out = NULL;
  *n = 0;
  _cleanup_free_ char *buf = strdup(s);
  if (buf == NULL) return -ENOMEM;
  size_t cap = 1;
  for (const char *p = s; *p; p++) cap += *p == ',';
  _cleanup_free_ struct bivy_net_publish *v = calloc(cap, sizeof(*v));
  if (v == NULL) return -ENOMEM;
  size_t k = 0;
  char *save = NULL;
  for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    while (*tok == ' ') tok++;
    if (*tok == '\0') continue;
    int r = bivy_net_publish_parse(tok, where, &v[k], err);
    if (r < 0) return r;
    for (size_t i = 0; i < k; i++)
      if (publish_clash(&v[i], &v[k]))
        return bivy_error(err, EINVAL, "%s: \"%s\": host port %u/%s is published twice", where, tok,
                          v[k].host_port, bivy_net_proto_name(v[k].proto));
    k++;
  }
  *n = k;
  *out = k ? steal_pointer(&v) : NULL;
  return 0;
}
