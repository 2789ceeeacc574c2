/* bivyd layer 0 (policy): a node's admission policy in cluster mode (--cluster-policy FILE):
 * what this node agrees to run of the specs it finds in etcd, checked on the OCI config it
 * would run (after bivy_sv_make_config) before it claims or starts an instance. Write access
 * to etcd must not mean root on every node: the policy is the node's own, on its disk.
 *
 * File: a JSON object, every key optional (absent = not restricted):
 *   "rootfs_prefixes":  ["/srv/images", ...]  root.path (resolved) must lie under one of them
 *   "bundle_prefixes":  ["/srv/bundles", ...] spec.bundle (resolved) likewise ([] = no bundles)
 *   "host_bind_mounts": false | ["/srv/data", ...]  bind mounts of host paths: none, or only
 *                       sources under these prefixes
 *   "host_namespaces":  false   no host network (net host, container:, ns:), every one of
 *                       the pid, mount, ipc, uts and network namespaces new (none joined by path)
 *   "devices":          false   no linux.devices, no device cgroup rule that allows access
 *   "privileged":       false   a seccomp filter, masked and read-only paths, noNewPrivileges
 *   "max_capabilities": ["CAP_KILL", ...]  every capability set within this list
 *   "max_memory": "1G" | BYTES, "max_cpus": N.N, "max_pids": N   ceilings; an instance
 *                       without that limit is refused
 * true for host_bind_mounts, host_namespaces, devices, privileged = allowed (the default). */
#ifndef BIVYD_NODE_POLICY_H
#define BIVYD_NODE_POLICY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "runtime/error.h"

struct bivy_node_policy;

/* Parse a policy object; errors name `what` (e.g. "--cluster-policy /etc/bivy/p.json") and
 * the key: "... : max_memory: invalid size \"x\"". */
int bivy_node_policy_parse(json_t *j, const char *what, struct bivy_node_policy **out, bivy_error_t *err);
/* read and parse FILE */
int bivy_node_policy_load(const char *path, struct bivy_node_policy **out, bivy_error_t *err);
void bivy_node_policy_free(struct bivy_node_policy *p);

/* 0: this node may run the instance (spec as bivy up sent it, config the OCI config built
 * from it). -EPERM: refused; *rule = the policy key that refuses it (static string), err =
 * the detail ("mounts[7]: bind mount of host path \"/\""). */
int bivy_node_policy_check(const struct bivy_node_policy *p, json_t *spec, json_t *config, const char **rule,
                           bivy_error_t *err);

#endif
