/* A minimal root filesystem from Debian's busybox-static, for tests, the demo and
 * `bivy rootfs create`: no network download. */
#ifndef BIVY_MKROOTFS_H
#define BIVY_MKROOTFS_H

#include "runtime/error.h"

#define BIVY_BUSYBOX_PATH "/bin/busybox"

/* Populate dir (created if missing; must be empty or absent) from the static busybox at
 * busybox (NULL = BIVY_BUSYBOX_PATH): applet links, /etc/passwd, /etc/group, /tmp, mount
 * points. */
int bivy_mkrootfs(const char *dir, const char *busybox, bivy_error_t *err);

#endif
