// fuzz-sources: runtime/config.c runtime/config-util.c runtime/config-mounts.c runtime/config-process.c runtime/config-linux.c runtime/error.c runtime/util.c
/* libFuzzer target: arbitrary bytes as config.json. Must never crash or leak; a parsed config
 * is walked so that every pointer the parser produced is touched under ASan. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "runtime/config.h"

static size_t walk(const struct bivy_config *c) {
  size_t n = 0;
  if (c->has_process) {
    for (char **a = c->process.args; *a; a++) n += strlen(*a);
    for (char **e = c->process.env; e && *e; e++) n += strlen(*e);
    n += strlen(c->process.cwd);
  }
  for (size_t i = 0; i < c->n_mounts; i++) {
    n += strlen(c->mounts[i].destination);
    if (c->mounts[i].data) n += strlen(c->mounts[i].data);
  }
  for (size_t i = 0; i < c->n_namespaces; i++) {
    n += strlen(bivy_ns_name(c->namespaces[i].type));
    if (c->namespaces[i].path) n += strlen(c->namespaces[i].path);
  }
  for (size_t i = 0; i < c->n_annotations; i++) n += strlen(c->annotations[i].value);
  for (size_t i = 0; i < c->n_sysctls; i++) n += strlen(c->sysctls[i].value);
  for (size_t i = 0; i < c->n_devices; i++) n += strlen(c->devices[i].path);
  for (char **p = c->masked_paths; p && *p; p++) n += strlen(*p);
  for (int k = 0; k < BIVY_HOOK_KIND_COUNT; k++)
    for (size_t i = 0; i < c->n_hooks[k]; i++) n += strlen(c->hooks[k][i].path);
  return n + strlen(c->root_path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct bivy_config *c = NULL;
  bivy_error_t err = NULL;
  /* bundle "/" exists, so relative root paths resolve to real directories sometimes */
  if (bivy_config_parse((const char *)data, size, "/", &c, &err) == 0) {
    volatile size_t n = walk(c);
    (void)n;
    (void)bivy_config_annotation(c, "org.bivy.net");
    bivy_config_free(c);
  } else if (err == NULL || err->msg == NULL || strncmp(err->msg, "config.json: ", 13) != 0) {
    __builtin_trap(); /* every failure must carry a "config.json: " message */
  }
  bivy_error_release(&err);
  return 0;
}
