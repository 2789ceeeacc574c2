/* bivyd layer 0 (policy): pure decisions of cluster mode (see placement-policy.h). */
#include "tools/bivyd/policy/placement-policy.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/util.h"

static double load_after(const struct bivy_cl_node *nd, double cpus, uint64_t mem) {
  double c = nd->cpus > 0 ? (nd->used_cpus + cpus) / nd->cpus : 0;
  double m = nd->mem > 0 ? (double)(nd->used_mem + mem) / (double)nd->mem : 0;
  return c > m ? c : m;
}

static bool fits(const struct bivy_cl_node *nd, double cpus, uint64_t mem) {
  /* a small epsilon: CPU limits are decimals that add up with rounding error */
  if (cpus > 0 && nd->used_cpus + cpus > nd->cpus + 1e-9) return false;
  if (mem > 0 && nd->used_mem + mem > nd->mem) return false;
  return true;
}

int bivy_cl_place(const struct bivy_cl_node *nodes, size_t n, double cpus, uint64_t mem, const char *only) {
  int best = -1;
  double best_load = 0;
  for (size_t i = 0; i < n; i++) {
    const struct bivy_cl_node *nd = &nodes[i];
    if (nd->drained || nd->refuses || !fits(nd, cpus, mem)) continue;
    if (only && strcmp(nd->name, only) != 0) continue;
    double l = load_after(nd, cpus, mem);
    bool better = best < 0 || l < best_load - 1e-12;
    if (!better && l <= best_load + 1e-12)
      better = nd->count < nodes[best].count ||
               (nd->count == nodes[best].count && strcmp(nd->name, nodes[best].name) < 0);
    if (better) {
      best = (int)i;
      best_load = l;
    }
  }
  return best;
}

uint64_t bivy_cl_fence_at(uint64_t last_ok_send_ms, uint64_t ttl_ms, uint64_t margin_ms) {
  if (margin_ms >= ttl_ms) return last_ok_send_ms;
  return last_ok_send_ms + ttl_ms - margin_ms;
}

uint64_t bivy_cl_call_timeout(uint64_t now_ms, uint64_t fence_at_ms, uint64_t max_ms) {
  if (now_ms >= fence_at_ms) return 0;
  uint64_t left = fence_at_ms - now_ms;
  if (left < 20) return 0; /* too close: fence first */
  return left - 10 < max_ms ? left - 10 : max_ms;
}

void bivy_cl_urls_free(char **urls) {
  if (urls == NULL) return;
  for (char **u = urls; *u; u++) free(*u);
  free(urls);
}

static bool url_valid(const char *u) {
  const char *p;
  if (strncmp(u, "http://", 7) == 0) p = u + 7;
  else if (strncmp(u, "https://", 8) == 0) p = u + 8;
  else return false;
  const char *colon = strrchr(p, ':');
  if (colon == NULL || colon == p) return false;
  for (const char *h = p; h < colon; h++)
    if (!(isalnum((unsigned char)*h) || *h == '.' || *h == '-' || *h == '[' || *h == ']' || *h == ':')) return false;
  char *end;
  errno = 0;
  long port = strtol(colon + 1, &end, 10);
  if (errno || end == colon + 1 || port < 1 || port > 65535) return false;
  return *end == '\0' || strcmp(end, "/") == 0;
}

bool bivy_cl_url_loopback(const char *u) {
  const char *p = strncmp(u, "https://", 8) == 0 ? u + 8 : strncmp(u, "http://", 7) == 0 ? u + 7 : NULL;
  const char *colon = p ? strrchr(p, ':') : NULL;
  if (colon == NULL) return false;
  size_t l = (size_t)(colon - p);
  if ((l == 9 && strncmp(p, "localhost", 9) == 0) || (l == 5 && strncmp(p, "[::1]", 5) == 0)) return true;
  if (l < 5 || strncmp(p, "127.", 4) != 0) return false;
  int dots = 0;
  for (const char *h = p + 4; h < colon; h++) {
    if (*h == '.') dots++;
    else if (!isdigit((unsigned char)*h)) return false;
  }
  return dots == 2;
}

uint64_t bivy_cl_attempt_ms(uint64_t left_ms, size_t endpoints_left) {
  if (endpoints_left <= 1) return left_ms;
  uint64_t share = left_ms / endpoints_left;
  if (share < BIVY_CL_ATTEMPT_MIN_MS) share = BIVY_CL_ATTEMPT_MIN_MS;
  return share < left_ms ? share : left_ms;
}

int bivy_cl_failover_parse(const char *s, const char *what, struct bivy_cl_failover *f, bivy_error_t *err) {
  *f = (struct bivy_cl_failover){BIVY_CL_FENCED, 0};
  if (s == NULL || strcmp(s, "fenced") == 0) return 0;
  if (strcmp(s, "keep") == 0) {
    f->kind = BIVY_CL_KEEP;
    return 0;
  }
  if (strncmp(s, "relaxed=", 8) != 0)
    return bivy_error_plain(err, EINVAL, "%s: unknown policy \"%s\" (fenced, keep or relaxed=DURATION)", what, s);
  uint64_t ms = 0;
  if (bivy_parse_duration(s + 8, &ms) < 0)
    return bivy_error_plain(err, EINVAL, "%s: relaxed=%s: not a duration (e.g. 30s)", what, s + 8);
  if (ms < 1000 || ms > BIVY_CL_RELAXED_MAX_MS)
    return bivy_error_plain(err, EINVAL, "%s: relaxed=%s: out of range (1s to 1h; beyond, use keep)", what, s + 8);
  f->kind = BIVY_CL_RELAXED;
  f->relaxed_ms = ms;
  return 0;
}

struct bivy_cl_failover bivy_cl_failover_of(const char *s) {
  struct bivy_cl_failover f;
  if (bivy_cl_failover_parse(s, "", &f, NULL) < 0) f = (struct bivy_cl_failover){BIVY_CL_FENCED, 0};
  return f;
}

int bivy_cl_urls_parse(const char *arg, char ***urls, bivy_error_t *err) {
  *urls = NULL;
  if (arg == NULL || *arg == '\0') return bivy_error(err, 0, "--cluster: no URL given (expected http://HOST:PORT[,...])");
  size_t n = 1;
  for (const char *p = arg; *p; p++) n += *p == ',';
  char **v = calloc(n + 1, sizeof *v);
  char *copy = strdup(arg);
  if (v == NULL || copy == NULL) {
    free(v);
    free(copy);
    return bivy_error(err, ENOMEM, "--cluster");
  }
  size_t k = 0;
  char *save = NULL;
  int r = 0;
  for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    if (!url_valid(tok)) {
      r = bivy_error(err, 0, "--cluster: invalid URL \"%s\" (expected http://HOST:PORT)", tok);
      break;
    }
    size_t l = strlen(tok);
    if (tok[l - 1] == '/') tok[l - 1] = '\0';
    if ((v[k++] = strdup(tok)) == NULL) {
      r = bivy_error(err, ENOMEM, "--cluster");
      break;
    }
  }
  if (r == 0 && k == 0) r = bivy_error(err, 0, "--cluster: invalid URL list \"%s\" (expected http://HOST:PORT[,...])", arg);
  if (r == 0 && k != n) r = bivy_error(err, 0, "--cluster: empty element in \"%s\"", arg);
  free(copy);
  if (r < 0) {
    bivy_cl_urls_free(v);
    return r;
  }
  *urls = v;
  return 0;
}

bool bivy_cl_node_valid(const char *name) {
  size_t l = name ? strlen(name) : 0;
  if (l == 0 || l > 63 || name[0] == '.' || name[0] == '-') return false;
  for (size_t i = 0; i < l; i++)
    if (!(isalnum((unsigned char)name[i]) || name[i] == '_' || name[i] == '.' || name[i] == '-')) return false;
  return true;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *bivy_b64_encode(const void *data, size_t len) {
  const unsigned char *s = data;
  char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
  if (out == NULL) return NULL;
  for (size_t i = 0; i < len; i += 3) {
    unsigned v = (unsigned)s[i] << 16 | (i + 1 < len ? (unsigned)s[i + 1] << 8 : 0) | (i + 2 < len ? s[i + 2] : 0);
    *o++ = b64[v >> 18 & 63];
    *o++ = b64[v >> 12 & 63];
    *o++ = i + 1 < len ? b64[v >> 6 & 63] : '=';
    *o++ = i + 2 < len ? b64[v & 63] : '=';
  }
  *o = '\0';
  return out;
}

int bivy_b64_decode(const char *s, char **out, size_t *len) {
  size_t n = strlen(s);
  if (n % 4) return -EINVAL;
  char *o = malloc(n / 4 * 3 + 1);
  if (o == NULL) return -ENOMEM;
  size_t k = 0;
  for (size_t i = 0; i < n; i += 4) {
    unsigned v = 0;
    int pad = 0;
    for (int j = 0; j < 4; j++) {
      char c = s[i + j];
      const char *p = c ? strchr(b64, c) : NULL;
      if (c == '=' && i + 4 == n && j >= 2) {
        pad++;
        v <<= 6;
        continue;
      }
      if (p == NULL || pad) {
        free(o);
        return -EINVAL;
      }
      v = v << 6 | (unsigned)(p - b64);
    }
    o[k++] = (char)(v >> 16);
    if (pad < 2) o[k++] = (char)(v >> 8 & 255);
    if (pad < 1) o[k++] = (char)(v & 255);
  }
  o[k] = '\0';
  *out = o;
  *len = k;
  return 0;
}
