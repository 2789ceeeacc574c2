/* config-parse BUNDLE: parse BUNDLE/config.json with bivy's parser and print a JSON summary of
 * the parsed struct (for integration tests of `bivy spec`); on error print it and exit 1. */
#include <stdio.h>

#include "runtime/cleanup.h"
#include "runtime/config.h"

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: config-parse BUNDLE\n");
    return 2;
  }
  _cleanup_error_ bivy_error_t err = NULL;
  _cleanup_config_ struct bivy_config *c = NULL;
  if (bivy_config_load(argv[1], &c, &err) < 0) {
    fprintf(stderr, "config-parse: %s\n", err->msg);
    return 1;
  }
  _cleanup_json_ json_t *ns = json_array();
  for (size_t i = 0; i < c->n_namespaces; i++)
    json_array_append_new(ns, json_string(bivy_ns_name(c->namespaces[i].type)));
  _cleanup_json_ json_t *out = json_pack(
      "{s:s, s:b, s:O, s:i, s:i, s:I, s:I, s:b, s:s?}", "root", c->root_path, "process", c->has_process, "namespaces", ns,
      "mounts", (int)c->n_mounts, "uidMappings", (int)c->n_uid_mappings, "bounding",
      (json_int_t)c->process.caps.bounding, "sysFlags", (json_int_t)(c->n_mounts > 5 ? c->mounts[5].flags : 0),
      "seccomp", c->seccomp != NULL, "net", bivy_config_annotation(c, "org.bivy.net"));
  if (out == NULL) return 1;
  json_dumpf(out, stdout, JSON_COMPACT);
  putchar('\n');
  return 0;
}
