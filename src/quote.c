/* Quoting a bad value for an error message, the same way everywhere: in
 * single quotes, shortened to 40 bytes, non-printable bytes escaped; and
 * reading an exact integer argument the same way on Lua 5.2 to 5.4. */
#include <stdio.h>

#include "tlsharden.h"

#define TH_QUOTE_MAX 40

void th_push_quoted(lua_State *L, const char *s, size_t len) {
  luaL_Buffer b;
  size_t i, n = len > TH_QUOTE_MAX ? TH_QUOTE_MAX : len;
  luaL_buffinit(L, &b);
  luaL_addchar(&b, '\'');
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c < 0x7f && c != '\\') {
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
}

const char *th_quote_arg(lua_State *L, int idx) {
  size_t len;
  const char *s;
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TSTRING) {
    s = lua_tolstring(L, idx, &len);
    th_push_quoted(L, s, len);
  } else if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_pushvalue(L, idx);
    s = lua_tolstring(L, -1, &len);
    th_push_quoted(L, s, len);
    lua_remove(L, -2);
  } else if (lua_isnoneornil(L, idx)) {
    lua_pushstring(L, luaL_typename(L, idx));
  } else {
    lua_pushfstring(L, "a %s", luaL_typename(L, idx));
  }
  return lua_tostring(L, -1);
}

int th_integer(lua_State *L, int idx, lua_Integer *out) {
  lua_Number n;
  if (lua_type(L, idx) != LUA_TNUMBER) return 0;
  n = lua_tonumber(L, idx);
  /* Lua 5.2's lua_tointegerx truncates 1.5 to 1: compare the number itself */
  if (!(n >= -9007199254740992.0 && n <= 9007199254740992.0) || n != (lua_Number)(lua_Integer)n) return 0;
  *out = (lua_Integer)n;
  return 1;
}
