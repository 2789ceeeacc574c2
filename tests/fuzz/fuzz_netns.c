// fuzz-sources: netns/mode.c runtime/error.c runtime/util.c
// fuzz-seconds: 30
/* libFuzzer target: arbitrary bytes as the network annotations (org.bivy.net, org.bivy.publish,
 * org.bivy.subnet), which come from an untrusted config.json. Parsers must never crash or leak,
 * and whatever they accept must satisfy the invariants the rest of netns/ relies on. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netns/netns-internal.h"
#include "runtime/cleanup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (s == NULL) return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  bivy_error_t err = NULL;

  struct bivy_net_mode m;
  if (bivy_net_mode_parse(s, &m, &err) == 0) {
    if (m.kind == BIVY_NET_BRIDGE && !bivy_net_name_valid(m.bridge)) abort();
    if ((m.kind == BIVY_NET_CONTAINER || m.kind == BIVY_NET_NS) && m.arg == NULL) abort();
    bivy_net_mode_clear(&m);
  }
  bivy_error_release(&err);

  struct bivy_net_publish *p = NULL;
  size_t n = 0;
  if (bivy_net_publish_parse_list(s, "fuzz", &p, &n, &err) == 0) {
    for (size_t i = 0; i < n; i++)
      if (p[i].host_port == 0 || p[i].ctr_port == 0 || (p[i].proto != 6 && p[i].proto != 17)) abort();
    free(p);
  }
  bivy_error_release(&err);

  struct bivy_net_subnet sn;
  if (bivy_net_subnet_parse(s, &sn, &err) == 0) {
    if (sn.prefix < 8 || sn.prefix > 29 || (sn.addr & ~bivy_net_subnet_mask(sn.prefix))) abort();
    char buf[24];
    struct bivy_net_subnet back;
    if (bivy_net_subnet_parse(bivy_net_subnet_str(&sn, buf, sizeof buf), &back, &err) != 0 || back.addr != sn.addr)
      abort();
  }
  bivy_error_release(&err);
  free(s);
  return 0;
}
