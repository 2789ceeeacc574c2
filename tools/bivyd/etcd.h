/* bivyd layer 4 (cluster): a small etcd v3 client over etcd's JSON gateway (POST /v3/...,
 * keys and values base64), with libcurl (loaded on first use). Every call is bounded by a
 * timeout (milliseconds) so that bivyd's single loop is never held longer than the caller
 * allows (see bivy_cl_call_timeout). */
#ifndef BIVYD_ETCD_H
#define BIVYD_ETCD_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "runtime/error.h"

/* How bivyd proves who it is to etcd and checks etcd's identity (all optional): a CA to
 * verify the members' certificates, a client certificate and key (mutual TLS), and an etcd
 * user whose token goes with every request. */
struct etcd_auth {
  const char *cacert, *cert, *key;
  const char *user;
  char *password;     /* read from --etcd-password-file; owned (wiped and freed by etcd_close) */
};

struct etcd {
  char **urls;        /* endpoints; a failed call moves on to the next one */
  int cur;
  struct etcd_auth a;
  char *token;        /* the etcd auth token of a.user, NULL before authenticating */
  void *curl;         /* CURL * reused: one kept-alive connection */
  uint64_t calls, failed_attempts, failovers; /* attempts, failed ones, moves to another endpoint */
  uint64_t auths;     /* tokens obtained */
};

/* urls: the --cluster argument (syntax checked), a: taken over (a->password included). */
int etcd_open(struct etcd *e, const char *urls, struct etcd_auth *a, bivy_error_t *err);
void etcd_close(struct etcd *e);
const char *etcd_url(const struct etcd *e);

/* POST path body -> the answer as JSON, within timeout_ms in all: an endpoint that does not
 * answer in its share of the time (or refuses, or answers 5xx) hands over to the next one.
 * Errors say which endpoint and why. */
int etcd_call(struct etcd *e, const char *path, json_t *body, uint64_t timeout_ms, json_t **resp, bivy_error_t *err);

int etcd_lease_grant(struct etcd *e, int64_t ttl_s, uint64_t timeout_ms, int64_t *id, bivy_error_t *err);
/* *ttl = seconds left after the renewal; 0 = the lease no longer exists */
int etcd_lease_keepalive(struct etcd *e, int64_t id, uint64_t timeout_ms, int64_t *ttl, bivy_error_t *err);
int etcd_lease_revoke(struct etcd *e, int64_t id, uint64_t timeout_ms, bivy_error_t *err);

int etcd_put(struct etcd *e, const char *key, const char *value, int64_t lease, uint64_t timeout_ms, bivy_error_t *err);
int etcd_delete(struct etcd *e, const char *key, uint64_t timeout_ms, bivy_error_t *err);
/* Every key under prefix: *kvs = array of {"key", "value" (decoded text), "lease",
 * "create_revision", "mod_revision"} (integers). */
int etcd_range_prefix(struct etcd *e, const char *prefix, uint64_t timeout_ms, json_t **kvs, bivy_error_t *err);

/* Transactions: compare, success and failure are arrays built with the helpers below
 * (stolen). *ok = whether the compares held. */
int etcd_txn(struct etcd *e, json_t *compare, json_t *success, json_t *failure, uint64_t timeout_ms, bool *ok,
             bivy_error_t *err);
json_t *etcd_cmp_absent(const char *key);                  /* create_revision == 0 */
json_t *etcd_cmp_value(const char *key, const char *value); /* value == */
json_t *etcd_cmp_mod(const char *key, int64_t mod_revision); /* mod_revision == */
json_t *etcd_op_put(const char *key, const char *value, int64_t lease);
json_t *etcd_op_del(const char *key);

#endif
