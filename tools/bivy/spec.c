/* bivy spec: write a default config.json into a bundle directory. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netns/netns.h"
#include "runtime/cleanup.h"
#include "runtime/config.h"
#include "runtime/seccomp.h"
#include "runtime/util.h"
#include "tools/bivy/cli.h"

#define SPEC_USAGE                                                                                    \
  "Usage: bivy spec [OPTIONS]\n"                                                                      \
  "\n"                                                                                                \
  "Write a default OCI config.json into the bundle directory (default: the current directory).\n"     \
  "The defaults follow runc's: sh as the process, PATH and TERM, cwd /, the capabilities\n"           \
  "AUDIT_WRITE, KILL and NET_BIND_SERVICE, RLIMIT_NOFILE 1024, noNewPrivileges, a read-only\n"        \
  "root \"rootfs\" (relative to the bundle), hostname \"bivy\", the usual /proc /dev /sys\n"          \
  "mounts, pid/network/ipc/uts/mount/cgroup namespaces, runc's masked and read-only paths, and\n"     \
  "the built-in \"default\" seccomp profile when one is available.\n"                                 \
  "Unlike runc, process.terminal is false, so the bundle runs from scripts out of the box; set\n"     \
  "it to true (and pass --console-socket) for an interactive shell.\n"                                \
  "\n"                                                                                                \
  "Options:\n"                                                                                        \
  "  -b, --bundle DIR      bundle directory to write DIR/config.json into (must exist)\n"              \
  "      --rootless        a config for an unprivileged caller: a user namespace mapping the\n"       \
  "                        caller's uid/gid to 0, no network namespace, /sys bind-mounted,\n"         \
  "                        no cgroup device rules\n"                                                  \
  "      --seccomp PROFILE built-in profile NAME (\"default\"), \"unconfined\" (no filter), or a\n"   \
  "                        FILE holding an OCI linux.seccomp JSON object\n"                            \
  "      --net MODE        networking done by bivy (annotation org.bivy.net): none, host (no\n"       \
  "                        network namespace), bridge[:NAME], container:ID or ns:PATH\n"              \
  "      --publish SPEC    [HOSTIP:]HOSTPORT:CTRPORT[/tcp|/udp] (IPv4 HOSTIP), repeatable\n"            \
  "                        (annotation org.bivy.publish); implies --net bridge when --net\n"\
  "                        is not given\n"         \
  "      --force           overwrite an existing config.json\n"                                       \
  "  -h, --help            this help\n"                                                               \
  "\n"                                                                                                \
  "Example: mkdir -p b/rootfs && bivy rootfs create b/rootfs && bivy spec -b b && bivy run -b b c1\n"

static int parse_port(const char *s, size_t len, unsigned *out) {
  if (len == 0 || len > 5) return -EINVAL;
  unsigned v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') return -EINVAL;
    v = v * 10 + (unsigned)(s[i] - '0');
  }
  if (v < 1 || v > 65535) return -ERANGE;
  *out = v;
  return 0;
}

/* [HOSTIP:]HOSTPORT:CTRPORT[/tcp|/udp] with an IPv4 HOSTIP (what netns/ implements) */
static int check_publish(const char *spec, bivy_error_t *err) {
  const char *proto = strchr(spec, '/');
  if (proto && strcmp(proto, "/tcp") != 0 && strcmp(proto, "/udp") != 0)
    return bivy_cli_usage_error(err, "spec", "--publish: protocol \"%s\" in \"%s\": tcp or udp", proto + 1, spec);
  const char *end = proto ? proto : spec + strlen(spec);
  const char *f[4];
  size_t n = 0;
  for (const char *p = spec; n < 4;) {
    f[n++] = p;
    const char *c = memchr(p, ':', (size_t)(end - p));
    if (c == NULL) break;
    p = c + 1;
  }
  if (n < 2 || n > 3)
    return bivy_cli_usage_error(err, "spec", "--publish: expected [HOSTIP:]HOSTPORT:CTRPORT[/tcp|/udp], got \"%s\"",
                                spec);
  if (n == 3) {
    char ip[INET_ADDRSTRLEN + 1];
    struct in_addr a4;
    size_t iplen = (size_t)(f[1] - 1 - f[0]);
    if (iplen >= sizeof ip) iplen = sizeof ip - 1;
    memcpy(ip, f[0], iplen);
    ip[iplen] = '\0';
    if (inet_pton(AF_INET, ip, &a4) != 1)
      return bivy_cli_usage_error(err, "spec", "--publish: invalid IPv4 address \"%s\" in \"%s\"", ip, spec);
  }
  unsigned hp, cp;
  const char *h = f[n - 2], *c = f[n - 1];
  if (parse_port(h, (size_t)(c - 1 - h), &hp) < 0 || parse_port(c, (size_t)(end - c), &cp) < 0)
    return bivy_cli_usage_error(err, "spec", "--publish: ports must be 1-65535 in \"%s\"", spec);
  return 0;
}

/* the interface name rule netns/ applies: 1-15 of A-Z a-z 0-9 _ -, starting alphanumeric */
static bool ifname_valid(const char *n) {
  size_t l = strlen(n);
  if (l == 0 || l > 15) return false;
  for (size_t i = 0; i < l; i++) {
    char c = n[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '-' && c != '_'))) return false;
  }
  return true;
}

static int check_net(const char *mode, bivy_error_t *err) {
  if (strcmp(mode, "none") == 0 || strcmp(mode, "host") == 0 || strcmp(mode, "bridge") == 0) return 0;
  if (strncmp(mode, "bridge:", 7) == 0) {
    if (ifname_valid(mode + 7)) return 0;
    return bivy_cli_usage_error(err, "spec", "--net: invalid bridge name \"%s\" (1-15 of A-Z a-z 0-9 _ -, starting alphanumeric)",
                                mode + 7);
  }
  if (strncmp(mode, "container:", 10) == 0) {
    if (bivy_id_valid(mode + 10)) return 0;
    return bivy_cli_usage_error(err, "spec", "--net: invalid container id \"%s\"", mode + 10);
  }
  if (strncmp(mode, "ns:", 3) == 0) {
    if (mode[3] == '/') return 0;
    return bivy_cli_usage_error(err, "spec", "--net: ns:PATH needs an absolute path, got \"%s\"", mode + 3);
  }
  return bivy_cli_usage_error(err, "spec", "--net: unknown mode \"%s\" (none, host, bridge[:NAME], container:ID, ns:PATH)",
                              mode);
}

static int load_seccomp(const char *arg, json_t **out, bivy_error_t *err) {
  *out = NULL;
  if (strcmp(arg, "unconfined") == 0) return 0;
  const char *text = bivy_seccomp_builtin(arg);
  _cleanup_free_ char *file = NULL;
  json_error_t jerr;
  if (text == NULL) {
    if (strchr(arg, '/') == NULL && access(arg, F_OK) != 0)
      return bivy_cli_usage_error(err, "spec", "--seccomp: \"%s\" is neither a built-in profile nor a file", arg);
    size_t len;
    int r = bivy_read_file_at(AT_FDCWD, arg, &file, &len, err);
    if (r < 0) return bivy_error_wrap(err, "spec: --seccomp");
    text = file;
  }
  json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
  if (j == NULL)
    return bivy_error(err, 0, "spec: --seccomp %s: line %d, column %d: %s", arg, jerr.line, jerr.column, jerr.text);
  if (!json_is_object(j) || !json_is_string(json_object_get(j, "defaultAction"))) {
    json_decref(j);
    return bivy_error(err, 0, "spec: --seccomp %s: expected an OCI linux.seccomp object with a defaultAction", arg);
  }
  *out = j;
  return 0;
}

static void drop_network_ns(json_t *spec) {
  json_t *ns = json_object_get(json_object_get(spec, "linux"), "namespaces");
  for (size_t i = json_array_size(ns); i-- > 0;) {
    const char *t = json_string_value(json_object_get(json_array_get(ns, i), "type"));
    if (t && strcmp(t, "network") == 0) json_array_remove(ns, i);
  }
}

static int write_config(const char *dir, const char *text, bool force, bivy_error_t *err) {
  _cleanup_free_ char *path = NULL;
  if (asprintf(&path, "%s/config.json", dir) < 0) return bivy_error(err, ENOMEM, "spec");
  struct stat st;
  if (stat(dir, &st) < 0) return bivy_error_errno(err, "spec: bundle %s", dir);
  if (!S_ISDIR(st.st_mode)) return bivy_error(err, ENOTDIR, "spec: bundle %s", dir);
  size_t len = strlen(text);
  if (force) {
    int r = bivy_write_file_atomic(path, text, len, 0644, err);
    return r < 0 ? bivy_error_wrap(err, "spec") : 0;
  }
  /* O_EXCL: never clobber an existing config, even if one appears while we run */
  _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0 && errno == EEXIST)
    return bivy_error(err, 0, "spec: %s already exists (use --force to overwrite)", path);
  if (fd < 0) return bivy_error_errno(err, "spec: create %s", path);
  const char *p = text;
  while (len > 0) {
    ssize_t w = write(fd, p, len);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      int e = bivy_error_errno(err, "spec: write %s", path);
      unlink(path); /* leave nothing half-written behind */
      return e;
    }
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

static int run_spec(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  (void)g;
  enum { OPT_ROOTLESS = 256, OPT_SECCOMP, OPT_NET, OPT_PUBLISH, OPT_FORCE };
  static const struct option opts[] = {{"bundle", required_argument, NULL, 'b'},
                                       {"rootless", no_argument, NULL, OPT_ROOTLESS},
                                       {"seccomp", required_argument, NULL, OPT_SECCOMP},
                                       {"net", required_argument, NULL, OPT_NET},
                                       {"publish", required_argument, NULL, OPT_PUBLISH},
                                       {"force", no_argument, NULL, OPT_FORCE},
                                       {"help", no_argument, NULL, 'h'},
                                       {0, 0, 0, 0}};
  const char *bundle = ".", *seccomp = NULL, *net = NULL;
  bool rootless = false, force = false;
  _cleanup_free_ char *publish = NULL;
  size_t publish_len = 0;
  int c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":b:h", opts, NULL)) != -1) {
    switch (c) {
      case 'b': bundle = optarg; break;
      case OPT_ROOTLESS: rootless = true; break;
      case OPT_SECCOMP: seccomp = optarg; break;
      case OPT_NET: {
        int r = check_net(optarg, err);
        if (r < 0) return r;
        net = optarg;
        break;
      }
      case OPT_PUBLISH: {
        int r = check_publish(optarg, err);
        if (r < 0) return r;
        size_t l = strlen(optarg);
        char *n = realloc(publish, publish_len + l + 2);
        if (n == NULL) return bivy_error(err, ENOMEM, "spec");
        publish = n;
        if (publish_len) publish[publish_len++] = ',';
        memcpy(publish + publish_len, optarg, l + 1);
        publish_len += l;
        break;
      }
      case OPT_FORCE: force = true; break;
      case 'h': return bivy_cli_help(SPEC_USAGE);
      case ':': return bivy_cli_usage_error(err, "spec", "%s needs an argument", argv[optind - 1]);
      default: return bivy_cli_usage_error(err, "spec", "unknown option %s", argv[optind - 1]);
    }
  }
  if (optind < argc) return bivy_cli_usage_error(err, "spec", "unexpected argument \"%s\"", argv[optind]);
  if (publish && net == NULL) net = "bridge";
  if (publish && strncmp(net, "bridge", 6) != 0)
    return bivy_cli_usage_error(err, "spec", "--publish needs --net bridge[:NAME], not \"%s\"", net);

  /* veths, bridges and nft rules need root in the host network namespace */
  if (rootless && net && strncmp(net, "bridge", 6) == 0)
    return bivy_cli_usage_error(err, "spec", "--net %s%s cannot work with --rootless (it needs root on the host)",
                                net, publish ? " (implied by --publish)" : "");

  _cleanup_json_ json_t *spec = bivy_config_default_spec_json(rootless);
  if (spec == NULL) return bivy_error(err, ENOMEM, "spec");
  _cleanup_json_ json_t *filter = NULL;
  /* safe by default: the built-in profile unless --seccomp says otherwise (no built-in
   * profile available means no filter, never a failure) */
  int r = 0;
  if (seccomp) r = load_seccomp(seccomp, &filter, err);
  else if (bivy_seccomp_builtin("default")) r = load_seccomp("default", &filter, err);
  if (r < 0) return r;
  if (filter) json_object_set(json_object_get(spec, "linux"), "seccomp", filter);
  if (net || publish) {
    json_t *ann = json_object();
    if (net) json_object_set_new(ann, BIVY_NET_ANNOTATION, json_string(net));
    if (publish) json_object_set_new(ann, BIVY_PUBLISH_ANNOTATION, json_string(publish));
    json_object_set_new(spec, "annotations", ann);
    if (strcmp(net, "host") == 0) drop_network_ns(spec);
    /* rootless drops the network namespace; "none" asks for an isolated one back */
    if (rootless && strcmp(net, "none") == 0)
      json_array_append_new(json_object_get(json_object_get(spec, "linux"), "namespaces"),
                            json_pack("{s:s}", "type", "network"));
  }
  _cleanup_free_ char *text = json_dumps(spec, JSON_INDENT(2));
  if (text == NULL) return bivy_error(err, ENOMEM, "spec");
  size_t tl = strlen(text);
  char *t2 = realloc(text, tl + 2);
  if (t2 == NULL) return bivy_error(err, ENOMEM, "spec");
  text = t2;
  memcpy(text + tl, "\n", 2);
  return write_config(bundle, text, force, err);
}

BIVY_VERB(verb_spec) = {
    .name = "spec",
    .summary = "write a default config.json into a bundle",
    .usage = SPEC_USAGE,
    .run = run_spec,
};
