/* bivyd layer 1 (loop): sd_notify through a libsystemd loaded on first use (see
 * service-notify.h). */
#include "tools/bivyd/service-notify.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <stdlib.h>

#include "tools/bivyd/daemon-log.h"

void service_notify(const char *state) {
  static int (*notify)(int, const char *);
  static bool tried;
  if (getenv("NOTIFY_SOCKET") == NULL) return;
  if (!tried) {
    tried = true;
    /* kept loaded for the daemon's life: STOPPING=1 comes later */
    void *h = dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
    if (h) *(void **)&notify = dlsym(h, "sd_notify");
    if (notify == NULL) bivyd_log("NOTIFY_SOCKET is set but libsystemd.so.0 cannot be loaded: %s", dlerror());
  }
  if (notify) notify(0, state);
}
