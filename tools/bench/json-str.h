/* json_str: write s to o as a JSON string (quotes, backslashes and control characters
 * escaped); shared by the bench's C drivers (benchtime.c, tput.c). */
#ifndef BIVY_BENCH_JSON_STR_H
#define BIVY_BENCH_JSON_STR_H
#include <stdio.h>

static inline void json_str(FILE *o, const char *s) {
  fputc('"', o);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(o, "\\%c", c);
    else if (c < 0x20) fprintf(o, "\\u%04x", c);
    else fputc(c, o);
  }
  fputc('"', o);
}
#endif
