/* bivyd layer 4 (cluster): who this node trusts and how it proves itself: the etcd
 * transport options (mutual TLS, an etcd user, no plain http off the host unless asked) and
 * the node's own admission policy for the instances it finds in etcd (--cluster-policy). */
#ifndef BIVYD_CLUSTER_TRUST_H
#define BIVYD_CLUSTER_TRUST_H

#include <jansson.h>
#include <stdbool.h>

#include "runtime/error.h"
#include "tools/bivyd/etcd.h"

struct cluster_opts {
  const char *urls, *node, *cpus, *mem, *ttl;
  const char *cacert, *cert, *key, *user, *password_file, *policy_file;
  bool insecure;
};

/* check the transport options (errors name the flag) and fill *a (the password read from
 * its file); load the policy */
int cluster_trust_config(const struct cluster_opts *o, struct etcd_auth *a, bivy_error_t *err);
/* log what this node trusts (once, at start) */
void cluster_trust_log(void);
/* may this node run instance name with spec? 0 = yes; -EPERM with *rule (the policy key)
 * and err (the detail) when its policy refuses it */
int cluster_admit(const char *name, json_t *spec, const char **rule, bivy_error_t *err);

#endif
