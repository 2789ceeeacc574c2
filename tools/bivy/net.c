/* bivy net ls|inspect|create|rm: the bridge networks of containers run with org.bivy.net=bridge. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netns/netns.h"
#include "runtime/cleanup.h"
#include "runtime/util.h"
#include "tools/bivy/cli.h"

static int print_json(json_t *j, bivy_error_t *err) {
  _cleanup_free_ char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  if (text == NULL) return bivy_error(err, ENOMEM, "net: format JSON");
  puts(text);
  return 0;
}

static int parse_format(const char *v, bool *json, bivy_error_t *err) {
  if (strcmp(v, "json") == 0) *json = true;
  else if (strcmp(v, "text") == 0 || strcmp(v, "table") == 0) *json = false;
  else return bivy_cli_usage_error(err, "net", "--format: unknown format \"%s\" (text or json)", v);
  return 0;
}

static int net_ls(struct bivy_global *g, bool json, bivy_error_t *err) {
  _cleanup_json_ json_t *arr = NULL;
  int r = bivy_net_list(g->root, &arr, err);
  if (r < 0) return r;
  if (json) return print_json(arr, err);
  printf("%-16s %-18s %-15s %-6s %s\n", "NAME", "SUBNET", "GATEWAY", "LEASES", "BRIDGE");
  size_t i;
  json_t *n;
  json_array_foreach(arr, i, n) {
    printf("%-16s %-18s %-15s %-6lld %s\n", json_string_value(json_object_get(n, "name")),
           json_string_value(json_object_get(n, "subnet")), json_string_value(json_object_get(n, "gateway")),
           (long long)json_integer_value(json_object_get(n, "leases")),
           json_is_true(json_object_get(n, "bridgePresent")) ? "up" : "absent");
  }
  return 0;
}

static int net_inspect(struct bivy_global *g, const char *name, bool json, bivy_error_t *err) {
  _cleanup_json_ json_t *j = NULL;
  int r = bivy_net_inspect(g->root, name, &j, err);
  if (r < 0) return r;
  if (json) return print_json(j, err);
  printf("name:       %s\nsubnet:     %s\ngateway:    %s\nmtu:        %lld\nbridge:     %s (%s, %lld ports)\n"
         "ip_forward: %s\n",
         name, json_string_value(json_object_get(j, "subnet")), json_string_value(json_object_get(j, "gateway")),
         (long long)json_integer_value(json_object_get(j, "mtu")), name,
         json_is_true(json_object_get(j, "bridgePresent")) ? "up" : "absent",
         (long long)json_integer_value(json_object_get(j, "bridgePorts")),
         json_is_true(json_object_get(j, "ipForward")) ? "on" : "off (published ports and outbound traffic need it)");
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(j, "containers"), i, c) {
    printf("container:  %-15s %s", json_string_value(json_object_get(c, "ip")), json_string_value(json_object_get(c, "id")));
    size_t k;
    json_t *p;
    json_array_foreach(json_object_get(c, "publish"), k, p) printf("%s%s", k ? "," : " publish ", json_string_value(p));
    printf("\n");
  }
  return 0;
}

static int run_net(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  static const struct option opts[] = {{"format", required_argument, NULL, 'f'},
                                       {"subnet", required_argument, NULL, 's'},
                                       {"mtu", required_argument, NULL, 'm'},
                                       {0, 0, 0, 0}};
  bool json = false, format_set = false;
  const char *subnet = NULL;
  unsigned mtu = 0;
  int c;
  optind = 0; /* full getopt re-initialisation: options may follow NAME (main parsed in "+" mode) */
  while ((c = getopt_long(argc, argv, "f:", opts, NULL)) != -1) {
    switch (c) {
      case 'f': {
        int r = parse_format(optarg, &json, err);
        if (r < 0) return r;
        format_set = true;
        break;
      }
      case 's': subnet = optarg; break;
      case 'm': {
        int64_t v;
        if (bivy_parse_i64(optarg, &v) < 0 || v < 576 || v > 65535)
          return bivy_cli_usage_error(err, "net", "--mtu: \"%s\" is not an MTU (576-65535)", optarg);
        mtu = (unsigned)v;
        break;
      }
      default: return bivy_cli_usage_error(err, "net", "unknown option");
    }
  }
  int n = argc - optind;
  const char *cmd = n > 0 ? argv[optind] : NULL;
  const char *name = n > 1 ? argv[optind + 1] : NULL;
  if (cmd == NULL) return bivy_cli_usage_error(err, "net", "expected a command: ls, inspect, create or rm");
  bool is_ls = strcmp(cmd, "ls") == 0 || strcmp(cmd, "list") == 0;
  if (!is_ls && strcmp(cmd, "inspect") && strcmp(cmd, "create") && strcmp(cmd, "rm"))
    return bivy_cli_usage_error(err, "net", "unknown command \"%s\" (ls, inspect, create or rm)", cmd);
  if (is_ls ? n != 1 : n != 2)
    return bivy_cli_usage_error(err, "net", is_ls ? "ls takes no arguments" : "%s takes exactly one NAME", cmd);
  if ((subnet || mtu) && strcmp(cmd, "create") != 0)
    return bivy_cli_usage_error(err, "net", "--subnet and --mtu are options of 'create'");
  if (is_ls) return net_ls(g, json, err);
  if (strcmp(cmd, "inspect") == 0) return net_inspect(g, name, format_set ? json : true, err);
  int r = strcmp(cmd, "create") == 0 ? bivy_net_create(g->root, name, subnet, mtu, err) : bivy_net_remove(g->root, name, err);
  if (r < 0) return bivy_error_wrap(err, "net %s %s", cmd, name);
  return 0;
}

BIVY_VERB(verb_net) = {
    .name = "net",
    .summary = "list, inspect, create and remove bridge networks",
    .usage = "Usage: bivy net ls [--format text|json]\n"
             "       bivy net inspect NAME [--format json|text]\n"
             "       bivy net create NAME [--subnet CIDR] [--mtu N]\n"
             "       bivy net rm NAME\n"
             "\n"
             "Bridge networks of containers created with the annotation org.bivy.net=bridge[:NAME]\n"
             "(`bivy spec --net bridge:NAME`). A network is a Linux bridge named NAME in bivy's network\n"
             "namespace plus an entry in the state root (ROOT/net/NAME) holding its subnet and the\n"
             "address leases. The first container on a network creates it: bivy0 gets 10.207.0.0/24,\n"
             "other names the first free 10.207.N.0/24, or the subnet in org.bivy.subnet.\n"
             "\n"
             "Commands:\n"
             "  ls        list networks (name, subnet, gateway, active leases, bridge state)\n"
             "  inspect   one network as JSON: leases with container ids and published ports,\n"
             "            bridge ports, and whether net.ipv4.ip_forward is on (bivy never turns it\n"
             "            on itself; published ports and outbound traffic need it)\n"
             "  create    define NAME and create its bridge now (--subnet CIDR, prefix 8-29;\n"
             "            --mtu N, default 1500); a subnet overlapping another network or an\n"
             "            address of this host is refused\n"
             "  rm        remove the bridge, its masquerade rule and the store entry; refused while\n"
             "            a container holds a lease or the bridge has ports\n"
             "\n"
             "Options:\n"
             "  --format text|json   output format (ls default text, inspect default json)\n",
    .run = run_net,
};
