/* The Lua C API of 5.4 on Lua 5.2 and 5.3: the few calls tlsharden uses
 * that older versions lack or declare differently. Included by tlsharden.h
 * after lua.h; every file writes 5.4's API and this header bridges it. */
#ifndef TLSHARDEN_COMPAT_H
#define TLSHARDEN_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM < 502 || LUA_VERSION_NUM > 504
#error "tlsharden.core needs Lua 5.2, 5.3 or 5.4"
#endif

#if LUA_VERSION_NUM < 504
/* A full userdata has one user value before 5.4; tlsharden asks for none. */
#define lua_newuserdatauv(L, size, nuvalue) lua_newuserdata((L), (size))
#endif

#if LUA_VERSION_NUM == 502
/* 5.2's getters return nothing; 5.3 made them return the type pushed. */
static inline int th_compat_getfield(lua_State *L, int idx, const char *k) {
  lua_getfield(L, idx, k);
  return lua_type(L, -1);
}
static inline int th_compat_gettable(lua_State *L, int idx) {
  lua_gettable(L, idx);
  return lua_type(L, -1);
}
static inline int th_compat_rawget(lua_State *L, int idx) {
  lua_rawget(L, idx);
  return lua_type(L, -1);
}
static inline int th_compat_rawgeti(lua_State *L, int idx, lua_Integer n) {
  lua_rawgeti(L, idx, (int)n);
  return lua_type(L, -1);
}
static inline int th_compat_rawgetp(lua_State *L, int idx, const void *p) {
  lua_rawgetp(L, idx, p);
  return lua_type(L, -1);
}
/* t[i] with metamethods (5.3's lua_geti). */
static inline int th_compat_geti(lua_State *L, int idx, lua_Integer i) {
  idx = lua_absindex(L, idx);
  lua_pushinteger(L, i);
  lua_gettable(L, idx);
  return lua_type(L, -1);
}
#define lua_getfield th_compat_getfield
#define lua_gettable th_compat_gettable
#define lua_rawget th_compat_rawget
#define lua_rawgeti th_compat_rawgeti
#define lua_rawgetp th_compat_rawgetp
#define lua_geti th_compat_geti

/* 5.2 has only floats: an integral number in the exact range of a double
 * counts as an integer (th_integer in args.c). */
int th_compat_isinteger(lua_State *L, int idx);
#define lua_isinteger th_compat_isinteger
#endif

#endif
