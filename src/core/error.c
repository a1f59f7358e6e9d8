/* Errors a program can test: every error tlsharden raises is a table
 * { kind, fn, message, reason [, argument] [, option] } with one shared
 * metatable whose __tostring gives the message, so that a program tells
 * kinds apart by a field and a person reads the message (docs/reference/api.md, "The
 * error rule"). The Lua modules make theirs with core.error_new. */
#include <stdio.h>
#include <string.h>

#include "core/tlsharden.h"

#define TH_ERROR_MT "tlsharden.error"

static const char *const kinds[] = {"argument", "refused", "input", "failed", "interrupted", NULL};

static int error_tostring(lua_State *L) {
  lua_getfield(L, 1, "message");
  if (!lua_isstring(L, -1)) lua_pushliteral(L, "tlsharden: an error without a message");
  return 1;
}

void th_error_register(lua_State *L) {
  if (luaL_newmetatable(L, TH_ERROR_MT)) {
    lua_pushcfunction(L, error_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
}

int th_is_error(lua_State *L, int idx) {
  int is = 0;
  if (lua_type(L, idx) == LUA_TTABLE && lua_getmetatable(L, idx)) {
    luaL_getmetatable(L, TH_ERROR_MT);
    is = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
  }
  return is;
}

/* The object for prefix .. reason, the two strings on top of the stack
 * (popped); raises it. */
static int raise_object(lua_State *L, const char *kind, const char *fn, int argn, const char *option) {
  int reason = lua_gettop(L), prefix = reason - 1;
  lua_createtable(L, 0, 6);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, fn);
  lua_setfield(L, -2, "fn");
  if (argn > 0) {
    lua_pushinteger(L, argn);
    lua_setfield(L, -2, "argument");
  }
  if (option) {
    lua_pushstring(L, option);
    lua_setfield(L, -2, "option");
  }
  lua_pushvalue(L, reason);
  lua_setfield(L, -2, "reason");
  lua_pushvalue(L, prefix);
  lua_pushvalue(L, reason);
  lua_concat(L, 2);
  lua_setfield(L, -2, "message");
  luaL_setmetatable(L, TH_ERROR_MT);
  return lua_error(L);
}

int th_vraise(lua_State *L, const char *kind, const char *fn, int argn, const char *option,
              const char *what, const char *fmt, va_list ap) {
  lua_pushfstring(L, "tlsharden.%s: %s", fn, what ? what : "");
  lua_pushvfstring(L, fmt, ap);
  return raise_object(L, kind, fn, argn, option);
}

int th_raise(lua_State *L, const char *kind, const char *fn, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  th_vraise(L, kind, fn, 0, NULL, NULL, fmt, ap);
  va_end(ap);
  return 0;
}

int th_argument_error(lua_State *L, const char *fn, int argn, const char *what, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  th_vraise(L, "argument", fn, argn, NULL, what, fmt, ap);
  va_end(ap);
  return 0;
}

int th_input_error(lua_State *L, const char *fn, int argn, const char *argname, const char *fmt, ...) {
  va_list ap;
  char what[TH_WHAT_MAX];
  snprintf(what, sizeof what, "bad argument #%d '%s': ", argn, argname);
  va_start(ap, fmt);
  th_vraise(L, "input", fn, argn, NULL, what, fmt, ap);
  va_end(ap);
  return 0;
}

int th_option_error(lua_State *L, const char *fn, const char *option, const char *fmt, ...) {
  va_list ap;
  char what[TH_WHAT_MAX];
  snprintf(what, sizeof what, "bad option '%s': ", option);
  va_start(ap, fmt);
  th_vraise(L, "argument", fn, 0, option, what, fmt, ap);
  va_end(ap);
  return 0;
}

/* core.error_new(t): t (kind, fn, message, reason and optionally argument
 * and option, checked) made an error object, for the Lua modules. */
static int error_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "kind");
  if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "tlsharden.core.error_new: no kind");
  {
    int i, known = 0;
    for (i = 0; kinds[i]; i++) known = known || strcmp(kinds[i], lua_tostring(L, -1)) == 0;
    if (!known) return luaL_error(L, "tlsharden.core.error_new: unknown kind %s", lua_tostring(L, -1));
  }
  lua_getfield(L, 1, "message");
  lua_getfield(L, 1, "reason");
  if (lua_type(L, -1) != LUA_TSTRING || lua_type(L, -2) != LUA_TSTRING)
    return luaL_error(L, "tlsharden.core.error_new: message and reason must be strings");
  lua_settop(L, 1);
  luaL_setmetatable(L, TH_ERROR_MT);
  return 1;
}

/* core.is_error(v): whether v is an error object of tlsharden. */
static int is_error(lua_State *L) {
  lua_pushboolean(L, th_is_error(L, 1));
  return 1;
}

void th_error_functions(lua_State *L) {
  lua_pushcfunction(L, error_new);
  lua_setfield(L, -2, "error_new");
  lua_pushcfunction(L, is_error);
  lua_setfield(L, -2, "is_error");
}
