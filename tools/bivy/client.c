/* bivyd client: see client.h. Not a verb. */
#include "tools/bivy/client.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cgroups/cgroups.h"
#include "runtime/cleanup.h"
#include "runtime/util.h"

void bivy_client_close(struct bivy_client *c) {
  if (c->in) fclose(c->in); /* closes fd too */
  else if (c->fd >= 0) close(c->fd);
  c->in = NULL;
  c->fd = -1;
}

int bivy_client_next(struct bivy_client *c, json_t **msg, bivy_error_t *err) {
  _cleanup_free_ char *line = NULL;
  size_t cap = 0;
  ssize_t n = getline(&line, &cap, c->in);
  if (n < 0) return ferror(c->in) ? bivy_error_errno(err, "read from bivyd") : 0;
  json_error_t je;
  *msg = json_loadb(line, (size_t)n, 0, &je);
  if (!json_is_object(*msg)) {
    json_decref(*msg);
    *msg = NULL;
    return bivy_error(err, EPROTO, "bivyd answered something that is not a JSON object: %s", je.text);
  }
  return 1;
}

int bivy_client_call(struct bivy_global *g, const char *verb, json_t *req, json_t **resp, struct bivy_client *keep,
                     bivy_error_t *err) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(g->socket) >= sizeof sa.sun_path) return bivy_error(err, ENAMETOOLONG, "%s: --socket %s", verb, g->socket);
  strcpy(sa.sun_path, g->socket);
  struct bivy_client c = {.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (c.fd < 0) return bivy_error_errno(err, "%s: socket", verb);
  if (connect(c.fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    close(c.fd);
    return bivy_error(err, e, "%s: cannot reach bivyd at %s (is it running? --socket / BIVY_SOCKET)", verb, g->socket);
  }
  c.in = fdopen(c.fd, "r");
  if (c.in == NULL) {
    close(c.fd);
    return bivy_error_errno(err, "%s: fdopen", verb);
  }
  _cleanup_free_ char *body = json_dumps(req, JSON_COMPACT);
  _cleanup_free_ char *txt = NULL;
  if (body == NULL || asprintf(&txt, "%s\n", body) < 0) {
    bivy_client_close(&c);
    return bivy_error(err, ENOMEM, "%s: request", verb);
  }
  const char *p = txt;
  size_t left = strlen(txt);
  int r = 0;
  while (left > 0) {
    ssize_t w = send(c.fd, p, left, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      r = bivy_error_errno(err, "%s: send to bivyd", verb);
      break;
    }
    p += w;
    left -= (size_t)w;
  }
  if (r < 0) {
    bivy_client_close(&c);
    return r;
  }
  json_t *m = NULL;
  r = bivy_client_next(&c, &m, err);
  if (r <= 0) {
    bivy_client_close(&c);
    return r < 0 ? bivy_error_wrap(err, "%s", verb) : bivy_error(err, EPIPE, "%s: bivyd closed the connection", verb);
  }
  if (!json_is_true(json_object_get(m, "ok"))) {
    const char *e = json_string_value(json_object_get(m, "error"));
    int rr = bivy_error(err, 0, "%s", e ? e : "bivyd refused the request");
    json_decref(m);
    bivy_client_close(&c);
    return rr;
  }
  *resp = m;
  if (keep) *keep = c;
  else bivy_client_close(&c);
  return 0;
}

void bivy_client_print_json(json_t *j) {
  char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
  if (s) {
    puts(s);
    free(s);
  }
}

int bivy_client_limit(const char *verb, const char *flag, const char *arg, json_t *limits, bivy_error_t *err) {
  int64_t v;
  if (strcmp(flag, "memory") == 0) {
    if (strcmp(arg, "-1") == 0 || strcmp(arg, "max") == 0) v = -1;
    else if (bivy_parse_size(arg, &v) < 0 || v == 0)
      return bivy_cli_usage_error(err, verb, "--memory: invalid size \"%s\" (e.g. 64M, or -1 for unlimited)", arg);
    else if (v < 65536)
      return bivy_cli_usage_error(err, verb, "--memory: %s is below the 64k minimum", arg);
    json_object_set_new(limits, "memory", json_integer(v));
  } else if (strcmp(flag, "pids-limit") == 0) {
    if (bivy_parse_i64(arg, &v) < 0 || v == 0 || v < -1)
      return bivy_cli_usage_error(err, verb, "--pids-limit: invalid number \"%s\" (> 0, or -1 for unlimited)", arg);
    json_object_set_new(limits, "pids", json_integer(v));
  } else if (strcmp(flag, "cpus") == 0) {
    char *end;
    errno = 0;
    double d = strtod(arg, &end);
    if (errno || end == arg || *end || !isfinite(d) || d < 0.01 || d > 4096)
      return bivy_cli_usage_error(err, verb, "--cpus: invalid number of CPUs \"%s\" (a decimal >= 0.01, e.g. 1.5)", arg);
    json_object_set_new(limits, "cpus", json_real(d));
  } else if (strcmp(flag, "cpuset-cpus") == 0) {
    uint8_t bits[128];
    if (*arg == '\0' || bivy_cgroup_parse_list(arg, bits, sizeof bits * 8) < 0)
      return bivy_cli_usage_error(err, verb, "--cpuset-cpus: \"%s\" is not a list like 0-1,3", arg);
    json_object_set_new(limits, "cpuset_cpus", json_string(arg));
  } else {
    return bivy_cli_usage_error(err, verb, "--%s: unknown limit", flag);
  }
  return 0;
}

void bivy_client_print_summary(json_t *in) {
  const char *name = json_string_value(json_object_get(in, "name"));
  const char *state = json_string_value(json_object_get(in, "state"));
  int pid = (int)json_integer_value(json_object_get(in, "pid"));
  if (pid > 0) printf("%s: %s (pid %d)\n", name ? name : "?", state ? state : "?", pid);
  else printf("%s: %s\n", name ? name : "?", state ? state : "?");
}
