/* bivy rootfs create DIR: a minimal busybox root filesystem (no download). */
#include <string.h>

#include "runtime/mkrootfs.h"
#include "tools/bivy/cli.h"

static int run_rootfs(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  (void)g;
  if (argc < 2 || strcmp(argv[1], "create") != 0)
    return bivy_cli_usage_error(err, "rootfs", "expected 'create DIR'");
  if (argc != 3) return bivy_cli_usage_error(err, "rootfs", "create takes exactly one DIR");
  int r = bivy_mkrootfs(argv[2], NULL, err);
  if (r < 0) return bivy_error_wrap(err, "rootfs create %s", argv[2]);
  return 0;
}

BIVY_VERB(verb_rootfs) = {
    .name = "rootfs",
    .summary = "create a minimal busybox root filesystem",
    .usage = "Usage: bivy rootfs create DIR\n"
             "\n"
             "Populate DIR (absent or empty) with a minimal root filesystem made from Debian's\n"
             "busybox-static (/bin/busybox): applet links, /etc/passwd, /etc/group, /etc/hosts,\n"
             "/tmp and the usual mount points. No network access is needed.\n",
    .run = run_rootfs,
};
