/* The error rule of tlsharden (docs/reference/api.md) in one place: every message
 * starts with the function, names the argument or option, and quotes the
 * bad value shortened to TH_QUOTE_MAX bytes with non-printable bytes
 * escaped; option tables are read by one reader that refuses unknown
 * names. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "core/tlsharden.h"

int th_verror(lua_State *L, const char *fn, const char *fmt, va_list ap) {
  return th_vraise(L, "argument", fn, 0, NULL, NULL, fmt, ap);
}

int th_error(lua_State *L, const char *fn, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  th_verror(L, fn, fmt, ap);
  va_end(ap);
  return 0;
}

void th_push_ssl_errors(lua_State *L, const char *fallback) {
  luaL_Buffer b;
  unsigned long e;
  int n = 0;
  char buf[256];
  luaL_buffinit(L, &b);
  while ((e = ERR_get_error()) != 0) {
    ERR_error_string_n(e, buf, sizeof buf);
    if (n++ > 0) luaL_addstring(&b, "; ");
    luaL_addstring(&b, buf);
  }
  if (n == 0) luaL_addstring(&b, fallback);
  luaL_pushresult(&b);
}

const char *th_quote_lstring(lua_State *L, const char *s, size_t len) {
  luaL_Buffer b;
  size_t i, n = len > TH_QUOTE_MAX ? TH_QUOTE_MAX : len;
  luaL_buffinit(L, &b);
  luaL_addchar(&b, '\'');
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (isprint(c) && c != '\\') {
      luaL_addchar(&b, (char)c);
    } else {
      char esc[8];
      snprintf(esc, sizeof esc, "\\%u", c);
      luaL_addstring(&b, esc);
    }
  }
  if (n < len) luaL_addstring(&b, "...");
  luaL_addchar(&b, '\'');
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/* No metamethod runs here: __tostring and __name belong to the caller's
 * objects, and a message must not depend on (or fail in) them. */
const char *th_quote(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      return th_quote_lstring(L, s, len);
    }
    case LUA_TNUMBER:
#if LUA_VERSION_NUM >= 503
      if (lua_isinteger(L, idx))
        return lua_pushfstring(L, "%I", (LUAI_UACINT)lua_tointeger(L, idx));
#endif
      /* as tostring writes it; on 5.2, whose numbers are all floats, 1 as "1" */
      return lua_pushfstring(L, "%f", (LUAI_UACNUMBER)lua_tonumber(L, idx));
    case LUA_TBOOLEAN:
      return lua_pushstring(L, lua_toboolean(L, idx) ? "true" : "false");
    case LUA_TNONE:
      return lua_pushliteral(L, "no value");
    case LUA_TNIL:
      return lua_pushliteral(L, "nil");
    default:
      return lua_pushfstring(L, "a %s", luaL_typename(L, idx));
  }
}

int th_arg_error(lua_State *L, const char *fn, int argn, const char *argname, const char *fmt, ...) {
  va_list ap;
  char what[TH_WHAT_MAX];
  if (argname) snprintf(what, sizeof what, "bad argument #%d '%s': ", argn, argname);
  else snprintf(what, sizeof what, "bad argument #%d: ", argn);
  va_start(ap, fmt);
  th_vraise(L, "argument", fn, argn, NULL, what, fmt, ap);
  va_end(ap);
  return 0;
}

/* --- option tables ---------------------------------------------------------- */

static int known_index(const char *const known[], const char *name) {
  int i;
  for (i = 0; known[i]; i++)
    if (strcmp(known[i], name) == 0) return i;
  return -1;
}

static const char *push_known(lua_State *L, const char *const known[]) {
  luaL_Buffer b;
  int i;
  luaL_buffinit(L, &b);
  for (i = 0; known[i]; i++) {
    if (i) luaL_addstring(&b, ", ");
    luaL_addstring(&b, known[i]);
  }
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

void th_opts_open(lua_State *L, th_opts *o, int argn, const char *fn, const char *argname,
                  const char *noun, const char *const known[]) {
  o->L = L;
  o->fn = fn;
  o->noun = noun;
  o->idx = 0;
  o->anchor = 0;
  if (lua_isnoneornil(L, argn)) return;
  if (!lua_istable(L, argn))
    th_arg_error(L, fn, argn, argname, "expected a table, got %s", th_quote(L, argn));
  o->idx = lua_absindex(L, argn);
  lua_pushnil(L);
  while (lua_next(L, o->idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING || known_index(known, lua_tostring(L, -1)) < 0) {
      const char *name = th_quote(L, -1);
      const char *list = push_known(L, known);
      th_arg_error(L, fn, argn, argname, "unknown %s %s (known: %s)",
                   strcmp(noun, "policy") == 0 ? "rule" : "option", name, list);
    }
  }
  /* Values read through __index may be fresh objects: keep them alive for
   * the rest of the call in a table of their own. */
  if (lua_getmetatable(L, o->idx)) {
    lua_pop(L, 1);
    lua_newtable(L);
    o->anchor = lua_gettop(L);
  }
}

int th_opt_get(th_opts *o, const char *name) {
  int type;
  if (!o->idx) {
    lua_pushnil(o->L);
    return LUA_TNIL;
  }
  type = lua_getfield(o->L, o->idx, name);
  if (o->anchor && type != LUA_TNIL) {
    lua_pushvalue(o->L, -1);
    lua_setfield(o->L, o->anchor, name);
  }
  return type;
}

int th_opt_error(th_opts *o, const char *name, const char *fmt, ...) {
  va_list ap;
  char what[TH_WHAT_MAX];
  snprintf(what, sizeof what, "bad %s '%s': ", o->noun, name);
  va_start(ap, fmt);
  th_vraise(o->L, "argument", o->fn, 0, name, what, fmt, ap);
  va_end(ap);
  return 0;
}

const char *th_opt_string(th_opts *o, const char *name, int flags, const char *dflt) {
  lua_State *L = o->L;
  const char *v = dflt;
  int type = th_opt_get(o, name);
  if (type == LUA_TSTRING) {
    size_t len;
    v = lua_tolstring(L, -1, &len);
    if (strlen(v) != len)
      th_opt_error(o, name, "contains a NUL byte: %s", th_quote(L, -1));
    if (len == 0 && !(flags & TH_OPT_EMPTY))
      th_opt_error(o, name, "expected a non-empty string, got ''");
  } else if ((flags & TH_OPT_FALSE) && type == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
    v = NULL;
  } else if (type != LUA_TNIL) {
    th_opt_error(o, name, "expected a string%s, got %s", (flags & TH_OPT_FALSE) ? " or false" : "",
                 th_quote(L, -1));
  }
  lua_pop(L, 1);  /* the string stays alive in the table (or the anchor) */
  return v;
}

int th_opt_int(th_opts *o, const char *name, int lo, int hi, int dflt, int if_false) {
  lua_State *L = o->L;
  int v = dflt;
  int type = th_opt_get(o, name);
  if (type == LUA_TBOOLEAN && !lua_toboolean(L, -1) && if_false != TH_NO_FALSE) {
    v = if_false;
  } else if (type != LUA_TNIL) {
    lua_Integer x = 0;
    if (!th_integer(L, -1, &x) || x < lo || x > hi)
      th_opt_error(o, name, "expected an integer from %d to %d%s, got %s", lo, hi,
                   if_false != TH_NO_FALSE ? " or false" : "", th_quote(L, -1));
    v = (int)x;
  }
  lua_pop(L, 1);
  return v;
}

int th_opt_bool(th_opts *o, const char *name, int dflt) {
  lua_State *L = o->L;
  int v = dflt;
  int type = th_opt_get(o, name);
  if (type == LUA_TBOOLEAN) v = lua_toboolean(L, -1);
  else if (type != LUA_TNIL) th_opt_error(o, name, "expected a boolean, got %s", th_quote(L, -1));
  lua_pop(L, 1);
  return v;
}

int th_opt_enum(th_opts *o, const char *name, const char *const names[], int dflt) {
  lua_State *L = o->L;
  int v = dflt;
  int type = th_opt_get(o, name);
  if (type != LUA_TNIL) {
    v = type == LUA_TSTRING ? known_index(names, lua_tostring(L, -1)) : -1;
    if (v < 0) {
      const char *got = th_quote(L, -1);
      luaL_Buffer b;
      int i;
      luaL_buffinit(L, &b);
      for (i = 0; names[i]; i++) {
        if (i) luaL_addstring(&b, names[i + 1] ? ", " : " or ");
        lua_pushfstring(L, "\"%s\"", names[i]);
        luaL_addvalue(&b);
      }
      luaL_pushresult(&b);
      th_opt_error(o, name, "expected %s, got %s", lua_tostring(L, -1), got);
    }
  }
  lua_pop(L, 1);
  return v;
}

const char *th_mode_name(int mode) {
  return mode == TH_MODE_SERVER ? "server" : mode == TH_MODE_CLIENT ? "client" : "unknown";
}

/* tlsharden.core.quote(v): the rendering th_quote gives, for the Lua
 * modules, so that both halves quote bad values the same way. */
int th_quote_value(lua_State *L) {
  th_quote(L, 1);
  return 1;
}

int th_integer(lua_State *L, int idx, lua_Integer *out) {
  lua_Number n;
#if LUA_VERSION_NUM >= 503
  if (lua_isinteger(L, idx)) {
    *out = lua_tointeger(L, idx);
    return 1;
  }
#endif
  if (lua_type(L, idx) != LUA_TNUMBER) return 0;
  n = lua_tonumber(L, idx);
  /* Lua 5.2's lua_tointegerx truncates 1.5 to 1: compare the number itself */
  if (!(n >= -9007199254740992.0 && n <= 9007199254740992.0) || n != (lua_Number)(lua_Integer)n)
    return 0;
  *out = (lua_Integer)n;
  return 1;
}

#if LUA_VERSION_NUM == 502
int th_compat_isinteger(lua_State *L, int idx) {
  lua_Integer i;
  return th_integer(L, idx, &i);
}
#endif
