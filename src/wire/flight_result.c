/* What the flight parser adds to its result from anywhere in a flight:
 * problem records (what a broken or hostile peer sent, as data), and the names of
 * registry codes and versions. Both flight.c and flight_messages.c write
 * through here, so that neither calls back into the other. */
#include <stdarg.h>

#include "wire/flight.h"

const char *th_flight_lookup(const th_named *t, unsigned code) {
  for (; t->name; t++)
    if (t->code == code) return t->name;
  return NULL;
}

const char *th_flight_version_name(unsigned wire) {
  int v = th_version_index((int)wire);
  return v >= 0 ? th_versions[v].name : NULL;
}

static void push_problem(flight *f, const char *code, const char *fmt, va_list ap) {
  lua_State *L = f->L;
  lua_createtable(L, 0, 3);
  th_set_string(L, "severity", "warning");
  th_set_string(L, "code", code);
  lua_pushvfstring(L, fmt, ap);
  lua_setfield(L, -2, "message");
  lua_pushvalue(L, -1);
  lua_rawseti(L, f->problems, ++f->nproblems);
}

void th_flight_problem(flight *f, const char *code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  push_problem(f, code, fmt, ap);
  va_end(ap);
  lua_pop(f->L, 1);
}

void th_flight_problem_open(flight *f, const char *code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  push_problem(f, code, fmt, ap);
  va_end(ap);
}
