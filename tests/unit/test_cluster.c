/* Cluster mode decisions (tools/bivyd/policy/placement-policy.c): placement, fencing timing, --cluster URLs,
 * node names, base64. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cleanup.h"
#include "tools/bivyd/policy/placement-policy.h"

#define G (1024ull * 1024 * 1024)
#define M (1024ull * 1024)

Test(cluster_place, least_loaded_first) {
  struct bivy_cl_node n[] = {
      {.name = "a", .cpus = 4, .mem = 4 * G, .used_mem = 2 * G, .count = 2},
      {.name = "b", .cpus = 4, .mem = 4 * G, .used_mem = 1 * G, .count = 5},
      {.name = "c", .cpus = 4, .mem = 4 * G, .used_mem = 3 * G, .count = 1},
  };
  cr_assert_eq(bivy_cl_place(n, 3, 0, 512 * M, NULL), 1);
  /* CPU load counts as much as memory: the larger fraction decides */
  n[1].used_cpus = 3.5;
  cr_assert_eq(bivy_cl_place(n, 3, 0.25, 512 * M, NULL), 0);
}

Test(cluster_place, ties_go_to_fewer_instances_then_name) {
  struct bivy_cl_node n[] = {
      {.name = "c", .cpus = 2, .mem = G, .count = 1},
      {.name = "b", .cpus = 2, .mem = G, .count = 0},
      {.name = "a", .cpus = 2, .mem = G, .count = 0},
  };
  /* no limits: load 0 everywhere */
  cr_assert_eq(bivy_cl_place(n, 3, 0, 0, NULL), 2);
  n[2].count = 1;
  cr_assert_eq(bivy_cl_place(n, 3, 0, 0, NULL), 1);
}

Test(cluster_place, only_what_fits_and_not_drained) {
  struct bivy_cl_node n[] = {
      {.name = "a", .cpus = 2, .mem = G, .used_mem = 900 * M},
      {.name = "b", .cpus = 2, .mem = G, .drained = true},
      {.name = "c", .cpus = 1, .mem = 8 * G, .used_cpus = 0.75},
  };
  cr_assert_eq(bivy_cl_place(n, 3, 0, 200 * M, NULL), 2);  /* a is full, b drained */
  cr_assert_eq(bivy_cl_place(n, 3, 0.5, 200 * M, NULL), -1); /* c lacks the CPU: pending */
  cr_assert_eq(bivy_cl_place(n, 3, 0.25, 0, NULL), 0);     /* exactly full fits (0.75 + 0.25) */
  cr_assert_eq(bivy_cl_place(n, 3, 0, 2 * G, NULL), 2);
  cr_assert_eq(bivy_cl_place(n, 3, 0, 9 * G, NULL), -1);
  cr_assert_eq(bivy_cl_place(n, 0, 0, 0, NULL), -1);        /* no live node */
}

Test(cluster_place, migrate_target_only) {
  struct bivy_cl_node n[] = {
      {.name = "a", .cpus = 2, .mem = G},
      {.name = "b", .cpus = 2, .mem = G, .used_mem = 800 * M},
  };
  cr_assert_eq(bivy_cl_place(n, 2, 0, 100 * M, "b"), 1);
  cr_assert_eq(bivy_cl_place(n, 2, 0, 300 * M, "b"), -1);
  cr_assert_eq(bivy_cl_place(n, 2, 0, 100 * M, "zz"), -1);
  n[1].drained = true;
  cr_assert_eq(bivy_cl_place(n, 2, 0, 100 * M, "b"), -1);
}

Test(cluster_fence, deadline_from_last_successful_send) {
  /* TTL 3 s, margin 1 s: renewal sent at t=10 s -> fence at 12 s, before etcd can expire
   * the lease (>= 13 s) */
  cr_assert_eq(bivy_cl_fence_at(10000, 3000, 1000), 12000);
  cr_assert_lt(bivy_cl_fence_at(10000, 3000, 1000), 10000 + 3000);
  /* a margin as large as the TTL: fence at once */
  cr_assert_eq(bivy_cl_fence_at(10000, 3000, 3000), 10000);
}

Test(cluster_fence, calls_end_before_the_deadline) {
  cr_assert_eq(bivy_cl_call_timeout(1000, 5000, 500), 500);
  cr_assert_eq(bivy_cl_call_timeout(4800, 5000, 500), 190);
  cr_assert_leq(4800 + bivy_cl_call_timeout(4800, 5000, 500), 5000);
  cr_assert_eq(bivy_cl_call_timeout(4990, 5000, 500), 0); /* fence first */
  cr_assert_eq(bivy_cl_call_timeout(6000, 5000, 500), 0);
}

Test(cluster_fence, endpoint_attempts_share_the_call) {
  /* 500 ms over three members: a third each, the last one gets what is left */
  cr_assert_eq(bivy_cl_attempt_ms(500, 3), 166);
  cr_assert_eq(bivy_cl_attempt_ms(334, 2), 167);
  cr_assert_eq(bivy_cl_attempt_ms(167, 1), 167);
  /* never less than the minimum while there is time, never more than what is left */
  cr_assert_eq(bivy_cl_attempt_ms(150, 3), BIVY_CL_ATTEMPT_MIN_MS);
  cr_assert_eq(bivy_cl_attempt_ms(60, 3), 60);
  cr_assert_eq(bivy_cl_attempt_ms(0, 3), 0);
}

Test(cluster_failover, parse) {
  struct bivy_cl_failover f;
  bivy_error_t err = NULL;
  cr_assert_eq(bivy_cl_failover_parse(NULL, "--failover", &f, &err), 0);
  cr_assert_eq(f.kind, BIVY_CL_FENCED, "the default is fenced");
  cr_assert_eq(bivy_cl_failover_parse("keep", "--failover", &f, &err), 0);
  cr_assert_eq(f.kind, BIVY_CL_KEEP);
  cr_assert_eq(bivy_cl_failover_parse("relaxed=30s", "--failover", &f, &err), 0);
  cr_assert_eq(f.kind, BIVY_CL_RELAXED);
  cr_assert_eq(f.relaxed_ms, 30000);
  const char *bad[][2] = {{"sometimes", "--failover: unknown policy \"sometimes\" (fenced, keep or relaxed=DURATION)"},
                          {"relaxed=soon", "--failover: relaxed=soon: not a duration (e.g. 30s)"},
                          {"relaxed=500ms", "--failover: relaxed=500ms: out of range (1s to 1h; beyond, use keep)"},
                          {"relaxed=2h", "--failover: relaxed=2h: out of range (1s to 1h; beyond, use keep)"},
                          {"relaxed", "--failover: unknown policy \"relaxed\" (fenced, keep or relaxed=DURATION)"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cr_assert_lt(bivy_cl_failover_parse(bad[i][0], "--failover", &f, &err), 0, "%s", bad[i][0]);
    cr_assert_str_eq(err->msg, bad[i][1]);
    bivy_error_release(&err);
  }
  cr_assert_eq(bivy_cl_failover_of("garbage").kind, BIVY_CL_FENCED);
}

Test(cluster_urls, parse) {
  char **u = NULL;
  bivy_error_t err = NULL;
  cr_assert_eq(bivy_cl_urls_parse("http://127.0.0.1:2379/,https://etcd.example:443", &u, &err), 0);
  cr_assert_str_eq(u[0], "http://127.0.0.1:2379");
  cr_assert_str_eq(u[1], "https://etcd.example:443");
  cr_assert_null(u[2]);
  bivy_cl_urls_free(u);
  const char *bad[] = {"", "127.0.0.1:2379", "ftp://h:1", "http://h", "http://h:0", "http://h:65536", "http://:1",
                       "http://h:1,", "http://h:1/v3", "http://h h:1"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cr_assert_lt(bivy_cl_urls_parse(bad[i], &u, &err), 0, "%s accepted", bad[i]);
    cr_assert(strstr(err->msg, "--cluster"), "%s", err->msg);
    cr_assert_null(u);
  }
  bivy_error_release(&err);
}

Test(cluster_urls, loopback) {
  const char *yes[] = {"http://127.0.0.1:2379", "https://127.1.2.3:1", "http://localhost:2379", "http://[::1]:2379"};
  const char *no[] = {"http://10.0.0.1:2379", "http://127.0.0.1.evil.example:2379", "http://127.0.0:1",
                      "http://localhost.example:1", "https://etcd:2379", "http://[::2]:1", "http://127.0.0.x:1"};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) cr_assert(bivy_cl_url_loopback(yes[i]), "%s", yes[i]);
  for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) cr_assert_not(bivy_cl_url_loopback(no[i]), "%s", no[i]);
}

Test(cluster_urls, node_names) {
  cr_assert(bivy_cl_node_valid("node-1"));
  cr_assert(bivy_cl_node_valid("a.b_c"));
  cr_assert_not(bivy_cl_node_valid(""));
  cr_assert_not(bivy_cl_node_valid("-x"));
  cr_assert_not(bivy_cl_node_valid("a/b"));
  cr_assert_not(bivy_cl_node_valid("0123456789012345678901234567890123456789012345678901234567890123"));
}

Test(cluster_b64, round_trip) {
  const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar", "/bivy/inst/\xff\x01"};
  const char *enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy", NULL};
  for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
    _cleanup_free_ char *e = bivy_b64_encode(in[i], strlen(in[i]));
    if (enc[i]) cr_assert_str_eq(e, enc[i]);
    _cleanup_free_ char *d = NULL;
    size_t len = 0;
    cr_assert_eq(bivy_b64_decode(e, &d, &len), 0);
    cr_assert_eq(len, strlen(in[i]));
    cr_assert_eq(memcmp(d, in[i], len), 0);
  }
  char *d = NULL;
  size_t len;
  cr_assert_lt(bivy_b64_decode("Zm9", &d, &len), 0);
  cr_assert_lt(bivy_b64_decode("Zm=v", &d, &len), 0);
  cr_assert_lt(bivy_b64_decode("Z!9v", &d, &len), 0);
}
