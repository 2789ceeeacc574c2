/* daemonlat: restart latency of a daemon that serves a unix socket (bivyd), for
 * tools/bench/run.
 *
 *   daemonlat [-r ROUNDS] [-w WARMUP] [-t TIMEOUT_S] -s SOCKET -q REQUEST [-o OUT.json] -- DAEMON ARGS...
 *
 * Each round: posix_spawn DAEMON (stdin/stdout /dev/null, stderr inherited), then connect to
 * SOCKET until it accepts, send REQUEST plus a newline and read the first answer line; the
 * latency is spawn -> answer (CLOCK_MONOTONIC). Then SIGTERM to the daemon (by pid) and
 * wait for it, so the next round is a restart over the state the previous one left. The
 * last daemon is stopped too. Output: JSON like benchtime's (one variant "restart"). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static pid_t daemon_pid;
static volatile sig_atomic_t stop_sig;
static void on_stop(int sig) { stop_sig = sig; }

static void stop_daemon(void) {
  if (daemon_pid <= 0) return;
  kill(daemon_pid, SIGTERM); /* our own child, by pid */
  while (waitpid(daemon_pid, NULL, 0) < 0 && errno == EINTR) {
  }
  daemon_pid = 0;
}

/* connect, send req, read one line; 0 on an answer, -1 not (yet) */
static int ask(const char *sock, const char *req, char *ans, size_t ansz) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    close(fd);
    return -1;
  }
  size_t len = strlen(req);
  if (write(fd, req, len) != (ssize_t)len || write(fd, "\n", 1) != 1) {
    close(fd);
    return -1;
  }
  /* read in chunks up to the first newline (a byte at a time would time the harness: an
   * answer of a few KiB costs thousands of read calls) */
  size_t got = 0;
  char *nl = NULL;
  while (got + 1 < ansz && nl == NULL) {
    ssize_t n = read(fd, ans + got, ansz - 1 - got);
    if (n <= 0) break;
    nl = memchr(ans + got, '\n', (size_t)n);
    got += (size_t)n;
  }
  if (nl) got = (size_t)(nl - ans);
  ans[got] = '\0';
  close(fd);
  return got > 0 ? 0 : -1;
}

int main(int argc, char **argv) {
  int rounds = 30, warmup = 2, timeout_s = 30;
  const char *sock = NULL, *req = NULL, *out = NULL;
  int c;
  while ((c = getopt(argc, argv, "r:w:t:s:q:o:h")) != -1) {
    switch (c) {
      case 'r': rounds = atoi(optarg); break;
      case 'w': warmup = atoi(optarg); break;
      case 't': timeout_s = atoi(optarg); break;
      case 's': sock = optarg; break;
      case 'q': req = optarg; break;
      case 'o': out = optarg; break;
      default:
        fprintf(stderr, "Usage: daemonlat [-r ROUNDS] [-w WARMUP] [-t TIMEOUT_S] -s SOCKET -q REQUEST [-o OUT] -- DAEMON ARGS...\n");
        return c == 'h' ? 0 : 2;
    }
  }
  if (!sock || !req || optind >= argc || rounds < 1 || warmup < 0 || timeout_s < 1) {
    fprintf(stderr, "daemonlat: need -s SOCKET, -q REQUEST and a DAEMON command; ROUNDS >= 1\n");
    return 2;
  }
  struct sigaction st = {.sa_handler = on_stop};
  sigaction(SIGINT, &st, NULL);
  sigaction(SIGTERM, &st, NULL);
  double *lat = calloc((size_t)rounds, sizeof(double));
  if (lat == NULL) return 1;
  char err[600] = "";
  static char ans[65536];
  int n = 0;
  for (int r = 0; r < warmup + rounds && !err[0]; r++) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    double t0 = now_ms();
    int e = posix_spawn(&daemon_pid, argv[optind], &fa, NULL, argv + optind, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (e != 0) {
      snprintf(err, sizeof err, "cannot run %s: %s", argv[optind], strerror(e));
      daemon_pid = 0;
      break;
    }
    for (;;) {
      if (ask(sock, req, ans, sizeof ans) == 0) break;
      int status;
      if (waitpid(daemon_pid, &status, WNOHANG) == daemon_pid) {
        snprintf(err, sizeof err, "daemon exited (status 0x%x) before answering", status);
        daemon_pid = 0;
        break;
      }
      if (stop_sig || now_ms() - t0 > timeout_s * 1e3) {
        snprintf(err, sizeof err, stop_sig ? "interrupted" : "no answer on %s within %d s", sock, timeout_s);
        break;
      }
      usleep(50);
    }
    double dt = now_ms() - t0;
    if (!err[0] && strstr(ans, "\"ok\":false") != NULL) snprintf(err, sizeof err, "answer: %.500s", ans);
    if (!err[0] && r >= warmup) lat[n++] = dt;
    stop_daemon();
    if (stop_sig) return 128 + stop_sig;
  }
  stop_daemon();

  FILE *o = stdout;
  if (out && (o = fopen(out, "we")) == NULL) return 1;
  fprintf(o, "{\"rounds\":%d,\"warmup\":%d,\"variants\":[{\"name\":\"restart\",\"ok\":%s,\"error\":", n, warmup,
          err[0] ? "false" : "true");
  if (err[0]) {
    fputc('"', o);
    for (const char *p = err; *p; p++) {
      if (*p == '"' || *p == '\\') fputc('\\', o);
      fputc((unsigned char)*p < 0x20 ? ' ' : *p, o);
    }
    fputc('"', o);
  } else {
    fputs("null", o);
  }
  qsort(lat, (size_t)n, sizeof(double), cmp_double);
  fprintf(o, ",\"total\":{\"n\":%d", err[0] ? 0 : n);
  if (!err[0] && n > 0) {
    int k90 = (9 * n + 9) / 10;
    fprintf(o, ",\"median\":%.4f,\"p90\":%.4f,\"min\":%.4f,\"max\":%.4f",
            n % 2 ? lat[n / 2] : (lat[n / 2 - 1] + lat[n / 2]) / 2, lat[k90 - 1], lat[0], lat[n - 1]);
  }
  fprintf(o, "},\"steps\":{}}]}\n");
  if (o != stdout) fclose(o);
  free(lat);
  return 0;
}
