// fuzz-sources: runtime/seccomp-parse.c runtime/seccomp.c runtime/seccomp-cache.c runtime/error.c runtime/util.c
// fuzz-seconds: 30
// fuzz-args: -max_len=1024
/* libFuzzer target: arbitrary bytes as linux.seccomp. Validation must never crash or leak,
 * and whatever it accepts must compile with libseccomp or fail with an error (no abort). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "runtime/cleanup.h"
#include "runtime/seccomp-internal.h"

/* libseccomp 2.5.4 can loop forever when one syscall has several conditional rules and one
 * of them compares two or more arguments (bivy compiles those in a child with a deadline:
 * bivy_scmp_compile_guarded, unit-tested in test_seccomp.c). Fuzzing compiles in-process, so
 * it leaves such profiles to the parser alone. */
static bool may_loop_libseccomp(const struct bivy_scmp_profile *p) {
  for (size_t i = 0; i < p->n_rules; i++) {
    if (p->rules[i].n_args == 0) continue;
    size_t k;
    json_t *n;
    json_array_foreach(p->rules[i].names, k, n) {
      for (size_t j = 0; j < p->n_rules; j++) {
        if (j == i || p->rules[j].n_args == 0 || (p->rules[i].n_args < 2 && p->rules[j].n_args < 2)) continue;
        size_t m;
        json_t *o;
        json_array_foreach(p->rules[j].names, m, o) if (json_equal(n, o)) return true;
      }
    }
  }
  return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* compile only profiles without unknown names: their warnings would flood the log */
static bool names_known(const struct bivy_scmp_profile *p) {
  for (size_t i = 0; i < p->n_rules; i++) {
    size_t k;
    json_t *n;
    json_array_foreach(p->rules[i].names, k, n) if (seccomp_syscall_resolve_name(json_string_value(n)) == __NR_SCMP_ERROR) return false;
  }
  return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  _cleanup_json_ json_t *j = json_loadb((const char *)data, size, 0, NULL);
  if (j == NULL) return 0;
  struct bivy_scmp_profile p;
  _cleanup_error_ bivy_error_t err = NULL;
  if (bivy_scmp_parse(j, &p, &err) == 0 && p.n_rules <= 64 && names_known(&p) && !may_loop_libseccomp(&p)) {
    struct sock_filter *prog = NULL;
    size_t n = 0;
    if (bivy_scmp_compile(&p, &prog, &n, &err) == 0 && (n == 0 || prog == NULL)) __builtin_trap();
    free(prog);
  }
  bivy_scmp_profile_clear(&p);
  return 0;
}
