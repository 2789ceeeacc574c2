/* bivyd layer 4 (cluster): the etcd v3 client over the JSON gateway (see etcd.h). */
#include "tools/bivyd/etcd.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cleanup.h"
#include "runtime/util.h"
#include "tools/bivyd/policy/placement-policy.h"

/* libcurl is loaded when a cluster is configured, not linked: a single-node bivyd does not
 * pay for it (and the dozens of libraries it brings) at every start. */
static struct {
  CURLcode (*global_init)(long);
  CURL *(*easy_init)(void);
  void (*easy_cleanup)(CURL *);
  void (*easy_reset)(CURL *);
  CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
  CURLcode (*easy_perform)(CURL *);
  CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
  const char *(*easy_strerror)(CURLcode);
  struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
  void (*slist_free_all)(struct curl_slist *);
} cu;

static int curl_load(bivy_error_t *err) {
  if (cu.easy_perform) return 0;
  void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) return bivy_error_plain(err, ENOENT, "--cluster: cannot load libcurl.so.4 (install libcurl4): %s", dlerror());
  struct { void **fn; const char *name; } syms[] = {
      {(void **)&cu.global_init, "curl_global_init"},   {(void **)&cu.easy_init, "curl_easy_init"},
      {(void **)&cu.easy_cleanup, "curl_easy_cleanup"}, {(void **)&cu.easy_reset, "curl_easy_reset"},
      {(void **)&cu.easy_setopt, "curl_easy_setopt"},   {(void **)&cu.easy_getinfo, "curl_easy_getinfo"},
      {(void **)&cu.easy_strerror, "curl_easy_strerror"}, {(void **)&cu.slist_append, "curl_slist_append"},
      {(void **)&cu.slist_free_all, "curl_slist_free_all"}, {(void **)&cu.easy_perform, "curl_easy_perform"}};
  for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
    *syms[i].fn = dlsym(h, syms[i].name);
    if (*syms[i].fn == NULL) {
      cu.easy_perform = NULL;
      return bivy_error_plain(err, ENOENT, "--cluster: libcurl.so.4 has no %s", syms[i].name);
    }
  }
  cu.global_init(CURL_GLOBAL_DEFAULT);
  return 0;
}

struct buf {
  char *p;
  size_t len;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud) {
  struct buf *b = ud;
  size_t n = size * nmemb;
  if (b->len + n > 64 * 1024 * 1024) return 0; /* an answer that large is not etcd's */
  char *q = realloc(b->p, b->len + n + 1);
  if (q == NULL) return 0;
  memcpy(q + b->len, ptr, n);
  b->len += n;
  q[b->len] = '\0';
  b->p = q;
  return n;
}

static void wipe_free(char *s) {
  if (s) explicit_bzero(s, strlen(s));
  free(s);
}

int etcd_open(struct etcd *e, const char *urls, struct etcd_auth *a, bivy_error_t *err) {
  *e = (struct etcd){0};
  int r = bivy_cl_urls_parse(urls, &e->urls, err);
  if (r < 0) {
    wipe_free(a->password);
    a->password = NULL;
    return r;
  }
  e->a = *a;
  a->password = NULL;
  if ((r = curl_load(err)) < 0 || (e->curl = cu.easy_init()) == NULL) {
    if (r == 0) r = bivy_error(err, ENOMEM, "--cluster: curl_easy_init");
    etcd_close(e); /* the password is wiped too */
    return r;
  }
  return 0;
}

void etcd_close(struct etcd *e) {
  if (e->curl) cu.easy_cleanup(e->curl);
  wipe_free(e->a.password);
  wipe_free(e->token);
  bivy_cl_urls_free(e->urls);
  *e = (struct etcd){0};
}

const char *etcd_url(const struct etcd *e) { return e->urls ? e->urls[e->cur] : ""; }

/* One attempt on the current endpoint. *retry: another member may answer (no connection,
 * no answer in time, or the member could not serve it: HTTP 5xx, e.g. no leader). */
static int call_one(struct etcd *e, const char *path, const char *txt, uint64_t timeout_ms, json_t **resp, bool *retry,
                    bivy_error_t *err) {
  _cleanup_free_ char *url = NULL, *auth = NULL;
  *retry = false;
  if (asprintf(&url, "%s%s", e->urls[e->cur], path) < 0) return bivy_error(err, ENOMEM, "etcd %s", path);
  CURL *h = e->curl;
  struct buf b = {0};
  char ebuf[CURL_ERROR_SIZE] = "";
  struct curl_slist *hdr = cu.slist_append(NULL, "Content-Type: application/json");
  if (e->token && strcmp(path, "/v3/auth/authenticate") != 0) {
    if (asprintf(&auth, "Authorization: %s", e->token) < 0) {
      cu.slist_free_all(hdr);
      return bivy_error(err, ENOMEM, "etcd %s", path);
    }
    hdr = cu.slist_append(hdr, auth);
  }
  cu.easy_reset(h);
  cu.easy_setopt(h, CURLOPT_URL, url);
  cu.easy_setopt(h, CURLOPT_POSTFIELDS, txt);
  cu.easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
  cu.easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
  cu.easy_setopt(h, CURLOPT_WRITEDATA, &b);
  cu.easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
  cu.easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
  cu.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
  cu.easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* no SIGALRM in a process that supervises children */
  cu.easy_setopt(h, CURLOPT_NOPROXY, "*"); /* etcd is never reached through a proxy from the environment */
  cu.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  /* https: the members' certificates are checked (against --etcd-cacert, else the system's
   * CAs) and, with --etcd-cert/--etcd-key, we prove who we are (etcd --client-cert-auth) */
  if (e->a.cacert) cu.easy_setopt(h, CURLOPT_CAINFO, e->a.cacert);
  if (e->a.cert) cu.easy_setopt(h, CURLOPT_SSLCERT, e->a.cert);
  if (e->a.key) cu.easy_setopt(h, CURLOPT_SSLKEY, e->a.key);
  CURLcode rc = cu.easy_perform(h);
  long status = 0;
  cu.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  cu.slist_free_all(hdr);
  _cleanup_free_ char *data = b.p;
  if (rc != CURLE_OK) {
    *retry = true;
    return bivy_error_plain(err, rc == CURLE_OPERATION_TIMEDOUT ? ETIMEDOUT : ECONNREFUSED, "etcd at %s unreachable: %s",
                            e->urls[e->cur], ebuf[0] ? ebuf : cu.easy_strerror(rc));
  }
  json_error_t je;
  json_t *j = data ? json_loads(data, 0, &je) : NULL;
  if (!json_is_object(j)) {
    json_decref(j);
    *retry = true;
    /* etcd's gateway answers some refusals in plain text (e.g. a client certificate with a
     * CommonName while auth is on): show its first line */
    int ln = data ? (int)strcspn(data, "\r\n") : 0;
    if (ln > 200) ln = 200;
    if (ln > 0)
      return bivy_error_plain(err, EPROTO, "etcd at %s: %s answered HTTP %ld: %.*s", e->urls[e->cur], path, status, ln, data);
    return bivy_error_plain(err, EPROTO, "etcd at %s: %s answered HTTP %ld, not JSON (is it etcd v3?)", e->urls[e->cur],
                            path, status);
  }
  if (status != 200) {
    const char *m = json_string_value(json_object_get(j, "error")) ?: json_string_value(json_object_get(j, "message"));
    int r = bivy_error_plain(err, status == 401 ? EACCES : EIO, "etcd at %s: %s: HTTP %ld: %s", e->urls[e->cur], path, status,
                             m ? m : "error");
    json_decref(j);
    *retry = status >= 500;
    return r;
  }
  *resp = j;
  return 0;
}

/* The call on the endpoints in turn, until deadline (monotonic ms). */
static int call_endpoints(struct etcd *e, const char *path, const char *txt, uint64_t deadline, json_t **resp,
                          bivy_error_t *err) {
  size_t n = 0;
  while (e->urls[n]) n++;
  /* A dead, stopped or partitioned member costs one share of this call, not the call: the
   * next member is tried within the same deadline (each gets bivy_cl_attempt_ms). The
   * member that answered stays the first choice for the next calls. */
  int r = 0;
  for (size_t tried = 0; tried < n; tried++) {
    uint64_t now = bivy_now_ns() / 1000000;
    uint64_t slice = bivy_cl_attempt_ms(deadline > now ? deadline - now : 0, n - tried);
    if (slice == 0) break;
    bool retry = false;
    bivy_error_release(err);
    r = call_one(e, path, txt, slice, resp, &retry, err);
    e->calls++;
    if (r == 0) return 0;
    e->failed_attempts++;
    if (!retry || n == 1) return r;
    e->cur = (e->cur + 1) % (int)n;
    e->failovers++;
  }
  if (r == 0) r = bivy_error(err, ETIMEDOUT, "etcd %s: no time left", path);
  return r;
}

/* --etcd-user: a token for the user (etcd checks its roles' key permissions on each request) */
static int authenticate(struct etcd *e, uint64_t deadline, bivy_error_t *err) {
  _cleanup_json_ json_t *req = json_pack("{s:s, s:s}", "name", e->a.user, "password", e->a.password ?: ""), *resp = NULL;
  char *txt = req ? json_dumps(req, JSON_COMPACT) : NULL;
  if (txt == NULL) return bivy_error(err, ENOMEM, "etcd authenticate");
  int r = call_endpoints(e, "/v3/auth/authenticate", txt, deadline, &resp, err);
  wipe_free(txt);
  if (r < 0) return bivy_error_wrap(err, "--etcd-user %s", e->a.user);
  const char *tok = json_string_value(json_object_get(resp, "token"));
  if (tok == NULL || *tok == '\0')
    return bivy_error_plain(err, EPROTO, "--etcd-user %s: etcd gave no token (is auth enabled on etcd?)", e->a.user);
  wipe_free(e->token);
  e->token = strdup(tok);
  e->auths++;
  return e->token ? 0 : bivy_error(err, ENOMEM, "etcd authenticate");
}

int etcd_call(struct etcd *e, const char *path, json_t *body, uint64_t timeout_ms, json_t **resp, bivy_error_t *err) {
  *resp = NULL;
  if (timeout_ms == 0) return bivy_error(err, ETIMEDOUT, "etcd %s: no time left", path);
  _cleanup_free_ char *txt = json_dumps(body, JSON_COMPACT);
  if (txt == NULL) return bivy_error(err, ENOMEM, "etcd %s", path);
  uint64_t deadline = bivy_now_ns() / 1000000 + timeout_ms;
  int r;
  if (e->a.user && e->token == NULL && (r = authenticate(e, deadline, err)) < 0) return r;
  r = call_endpoints(e, path, txt, deadline, resp, err);
  if (r == -EACCES && e->a.user) {
    /* the token is no longer valid (etcd forgets idle simple tokens, --auth-token-ttl): once more with a new one */
    wipe_free(e->token);
    e->token = NULL;
    if ((r = authenticate(e, deadline, err)) < 0) return r;
    r = call_endpoints(e, path, txt, deadline, resp, err);
  }
  return r;
}

static int64_t i64(json_t *v) {
  if (json_is_integer(v)) return (int64_t)json_integer_value(v);
  const char *s = json_string_value(v);
  return s ? strtoll(s, NULL, 10) : 0;
}


static json_t *b64(const char *s) {
  char *t = bivy_b64_encode(s, strlen(s));
  json_t *j = t ? json_string(t) : NULL;
  free(t);
  return j;
}

int etcd_lease_grant(struct etcd *e, int64_t ttl_s, uint64_t timeout_ms, int64_t *id, bivy_error_t *err) {
  _cleanup_json_ json_t *req = json_pack("{s:I}", "TTL", (json_int_t)ttl_s), *resp = NULL;
  int r = etcd_call(e, "/v3/lease/grant", req, timeout_ms, &resp, err);
  if (r < 0) return r;
  *id = i64(json_object_get(resp, "ID"));
  if (*id == 0) return bivy_error_plain(err, EPROTO, "etcd lease grant: no lease ID in the answer");
  return 0;
}

int etcd_lease_keepalive(struct etcd *e, int64_t id, uint64_t timeout_ms, int64_t *ttl, bivy_error_t *err) {
  _cleanup_json_ json_t *req = json_pack("{s:I}", "ID", (json_int_t)id), *resp = NULL;
  int r = etcd_call(e, "/v3/lease/keepalive", req, timeout_ms, &resp, err);
  if (r < 0) return r;
  json_t *res = json_object_get(resp, "result");
  if (res == NULL) return bivy_error_plain(err, EPROTO, "etcd lease keepalive: no result in the answer");
  *ttl = i64(json_object_get(res, "TTL")); /* absent (0) once the lease expired */
  return 0;
}

int etcd_lease_revoke(struct etcd *e, int64_t id, uint64_t timeout_ms, bivy_error_t *err) {
  _cleanup_json_ json_t *req = json_pack("{s:I}", "ID", (json_int_t)id), *resp = NULL;
  return etcd_call(e, "/v3/lease/revoke", req, timeout_ms, &resp, err);
}

json_t *etcd_op_put(const char *key, const char *value, int64_t lease) {
  json_t *p = json_pack("{s:o, s:o}", "key", b64(key), "value", b64(value));
  if (p && lease) json_object_set_new(p, "lease", json_integer((json_int_t)lease));
  return p;
}

int etcd_put(struct etcd *e, const char *key, const char *value, int64_t lease, uint64_t timeout_ms, bivy_error_t *err) {
  _cleanup_json_ json_t *req = etcd_op_put(key, value, lease), *resp = NULL;
  if (req == NULL) return bivy_error(err, ENOMEM, "etcd put");
  return etcd_call(e, "/v3/kv/put", req, timeout_ms, &resp, err);
}

int etcd_delete(struct etcd *e, const char *key, uint64_t timeout_ms, bivy_error_t *err) {
  _cleanup_json_ json_t *req = json_pack("{s:o}", "key", b64(key)), *resp = NULL;
  if (req == NULL) return bivy_error(err, ENOMEM, "etcd delete");
  return etcd_call(e, "/v3/kv/deleterange", req, timeout_ms, &resp, err);
}

int etcd_range_prefix(struct etcd *e, const char *prefix, uint64_t timeout_ms, json_t **kvs, bivy_error_t *err) {
  *kvs = NULL;
  /* range_end = the prefix with its last byte incremented: every key starting with it */
  _cleanup_free_ char *end = strdup(prefix);
  if (end == NULL || *end == '\0') return bivy_error(err, ENOMEM, "etcd range");
  end[strlen(end) - 1]++;
  _cleanup_json_ json_t *req = json_pack("{s:o, s:o}", "key", b64(prefix), "range_end", b64(end)), *resp = NULL;
  int r = etcd_call(e, "/v3/kv/range", req, timeout_ms, &resp, err);
  if (r < 0) return r;
  json_t *out = json_array();
  size_t i;
  json_t *kv;
  json_array_foreach(json_object_get(resp, "kvs"), i, kv) {
    char *k = NULL, *v = NULL;
    size_t kl, vl;
    const char *ks = json_string_value(json_object_get(kv, "key")), *vs = json_string_value(json_object_get(kv, "value"));
    if (ks == NULL || bivy_b64_decode(ks, &k, &kl) < 0) continue;
    if (bivy_b64_decode(vs ? vs : "", &v, &vl) < 0) {
      free(k);
      continue;
    }
    json_array_append_new(out, json_pack("{s:s, s:s, s:I, s:I, s:I}", "key", k, "value", v, "lease",
                                         (json_int_t)i64(json_object_get(kv, "lease")), "create_revision",
                                         (json_int_t)i64(json_object_get(kv, "create_revision")), "mod_revision",
                                         (json_int_t)i64(json_object_get(kv, "mod_revision"))));
    free(k);
    free(v);
  }
  *kvs = out;
  return 0;
}

json_t *etcd_cmp_absent(const char *key) {
  return json_pack("{s:o, s:s, s:s, s:s}", "key", b64(key), "target", "CREATE", "result", "EQUAL", "create_revision", "0");
}

json_t *etcd_cmp_value(const char *key, const char *value) {
  return json_pack("{s:o, s:s, s:s, s:o}", "key", b64(key), "target", "VALUE", "result", "EQUAL", "value", b64(value));
}

json_t *etcd_cmp_mod(const char *key, int64_t mod_revision) {
  return json_pack("{s:o, s:s, s:s, s:I}", "key", b64(key), "target", "MOD", "result", "EQUAL", "mod_revision",
                   (json_int_t)mod_revision);
}

json_t *etcd_op_del(const char *key) { return json_pack("{s:{s:o}}", "request_delete_range", "key", b64(key)); }

int etcd_txn(struct etcd *e, json_t *compare, json_t *success, json_t *failure, uint64_t timeout_ms, bool *ok,
             bivy_error_t *err) {
  *ok = false;
  /* puts travel as {"request_put": {...}}: wrap the bare ones from etcd_op_put */
  json_t *lists[2] = {success, failure};
  for (int l = 0; l < 2; l++) {
    size_t i;
    json_t *op;
    json_array_foreach(lists[l], i, op) if (json_object_get(op, "key")) {
      json_array_set_new(lists[l], i, json_pack("{s:O}", "request_put", op));
    }
  }
  _cleanup_json_ json_t *req = json_pack("{s:o, s:o, s:o}", "compare", compare ? compare : json_array(), "success",
                                         success ? success : json_array(), "failure", failure ? failure : json_array());
  _cleanup_json_ json_t *resp = NULL;
  if (req == NULL) return bivy_error(err, ENOMEM, "etcd txn");
  int r = etcd_call(e, "/v3/kv/txn", req, timeout_ms, &resp, err);
  if (r < 0) return r;
  *ok = json_is_true(json_object_get(resp, "succeeded")); /* false is left out of the answer */
  return 0;
}
