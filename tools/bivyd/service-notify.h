/* bivyd layer 1 (loop): readiness and status for a service manager (systemd's sd_notify). */
#ifndef BIVYD_SERVICE_NOTIFY_H
#define BIVYD_SERVICE_NOTIFY_H

/* Send state ("READY=1", "STOPPING=1", ...) to the service manager when one asked for it
 * (NOTIFY_SOCKET is set, as with Type=notify); otherwise nothing, and libsystemd is never
 * loaded: a bivyd started by hand, a test or a benchmark links none of it. */
void service_notify(const char *state);

#endif
