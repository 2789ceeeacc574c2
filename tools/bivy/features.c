/* bivy features: what this runtime supports, as the OCI runtime-spec features document. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <linux/capability.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>

#include "runtime/cleanup.h"
#include "runtime/config.h"
#include "tools/bivy/cli.h"

#ifndef BIVY_VERSION
#define BIVY_VERSION "0.1.0"
#endif

#define FEATURES_USAGE                                                                          \
  "Usage: bivy features [--format json]\n"                                                      \
  "\n"                                                                                          \
  "Print the OCI runtime features document (runtime-spec features.md) as JSON: supported\n"     \
  "ociVersion range, hooks, mount options, namespaces, capabilities, cgroup drivers, seccomp\n" \
  "actions/operators/architectures, and implementation annotations. Clients such as\n"          \
  "containerd and podman read it to decide what they may ask for.\n"                            \
  "\n"                                                                                          \
  "Options:\n"                                                                                  \
  "      --format json  the output format (JSON is the only one)\n"                             \
  "  -h, --help         this help\n"

static json_t *strings(const char *const *v) {
  json_t *a = json_array();
  for (; *v; v++) json_array_append_new(a, json_string(*v));
  return a;
}

/* Every capability this libcap knows by name, "CAP_CHOWN" spelling. */
static json_t *capabilities(void) {
  json_t *a = json_array();
  for (int c = 0; c <= CAP_LAST_CAP && c < 64; c++) {
    char *name = cap_to_name(c);
    if (name == NULL) continue;
    if (strncmp(name, "cap_", 4) == 0) {
      for (char *p = name; *p; p++) *p = (char)toupper((unsigned char)*p);
      json_array_append_new(a, json_string(name));
    }
    cap_free(name);
  }
  return a;
}

json_t *bivy_features_json(void);
json_t *bivy_features_json(void) {
  static const char *const hooks[] = {"prestart",  "createRuntime", "createContainer", "startContainer",
                                      "poststart", "poststop",      NULL};
  static const char *const actions[] = {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
                                        "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG",
                                        "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP", NULL};
  static const char *const operators[] = {"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE",
                                          "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE", NULL};
  static const char *const archs[] = {
      "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM",       "SCMP_ARCH_MIPS",        "SCMP_ARCH_MIPS64",
      "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL",  "SCMP_ARCH_MIPSEL64",    "SCMP_ARCH_MIPSEL64N32",
      "SCMP_ARCH_PARISC",  "SCMP_ARCH_PARISC64",  "SCMP_ARCH_PPC",     "SCMP_ARCH_PPC64",     "SCMP_ARCH_PPC64LE",     "SCMP_ARCH_RISCV64",
      "SCMP_ARCH_S390",    "SCMP_ARCH_S390X",     "SCMP_ARCH_X32",         "SCMP_ARCH_X86",
      "SCMP_ARCH_X86_64",  NULL};

  static const char *const flags[] = {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                                      "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", NULL};

  json_t *ns = json_array();
  for (int t = 0; t < BIVY_NS_COUNT; t++) json_array_append_new(ns, json_string(bivy_ns_name((enum bivy_ns_type)t)));
  json_t *mopts = json_array();
  const char *o;
  for (size_t i = 0; (o = bivy_mount_option_name(i)); i++) json_array_append_new(mopts, json_string(o));

  const struct scmp_version *sv = seccomp_version();
  char scmp_ver[64];
  snprintf(scmp_ver, sizeof scmp_ver, "%u.%u.%u", sv ? sv->major : 0, sv ? sv->minor : 0, sv ? sv->micro : 0);

  return json_pack(
      "{s:s, s:s, s:o, s:o,"
      " s:{s:o, s:o, s:{s:b, s:b, s:b, s:b, s:b}, s:{s:b, s:o, s:o, s:o, s:o, s:o}, s:{s:b}, s:{s:b}, s:{s:b},"
      "    s:{s:{s:b}}},"
      " s:{s:s, s:s, s:s}}",
      "ociVersionMin", "1.0.0", "ociVersionMax", "1.2.0", "hooks", strings(hooks), "mountOptions", mopts,
      "linux",
      "namespaces", ns,
      "capabilities", capabilities(),
      "cgroup", "v1", 1, "v2", 1, "systemd", 0, "systemdUser", 0, "rdma", 0,
      "seccomp", "enabled", 1, "actions", strings(actions), "operators", strings(operators), "archs",
      strings(archs), "knownFlags", strings(flags), "supportedFlags", strings(flags),
      "apparmor", "enabled", 0,
      "selinux", "enabled", 0,
      "intelRdt", "enabled", 0,
      "mountExtensions", "idmap", "enabled", 0,
      "annotations",
      "org.bivy.version", BIVY_VERSION,
      "io.github.seccomp.libseccomp.version", scmp_ver,
      "org.bivy.net.supported", "none,host,bridge,container,ns");
}

static int run_features(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  (void)g;
  static const struct option opts[] = {
      {"format", required_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
  int c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    switch (c) {
      case 'f':
        if (strcmp(optarg, "json") != 0)
          return bivy_cli_usage_error(err, "features", "--format: unknown format \"%s\" (json)", optarg);
        break;
      case 'h': return bivy_cli_help(FEATURES_USAGE);
      case ':': return bivy_cli_usage_error(err, "features", "%s needs an argument", argv[optind - 1]);
      default: return bivy_cli_usage_error(err, "features", "unknown option %s", argv[optind - 1]);
    }
  }
  if (optind < argc) return bivy_cli_usage_error(err, "features", "unexpected argument \"%s\"", argv[optind]);
  _cleanup_json_ json_t *f = bivy_features_json();
  if (f == NULL) return bivy_error(err, ENOMEM, "features");
  if (json_dumpf(f, stdout, JSON_INDENT(2)) < 0 || fputc('\n', stdout) == EOF || fflush(stdout) != 0)
    return bivy_error_errno(err, "features: write");
  return 0;
}

BIVY_VERB(verb_features) = {
    .name = "features",
    .summary = "print the OCI features document (JSON)",
    .usage = FEATURES_USAGE,
    .run = run_features,
};
