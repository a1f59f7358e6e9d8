/* tlsharden.core: the C half of tlsharden. Each capability lives in its own
 * file, in a folder named for its job; this one holds the module table and
 * the guard every function of it runs behind. */
#include <string.h>

#include <openssl/opensslv.h>

#include "core/tlsharden.h"

static const luaL_Reg core_funcs[] = {
  {"protocol", th_protocol},
  {"versions", th_versions_in_force},
  {"option_names", th_option_names},
  {"ciphers", th_ciphers},
  {"forward_secrecy", th_forward_secrecy},
  {"merge", th_merge},
  {"merge_prosody", th_merge_prosody},
  {"merge_with", th_merge_with},
  {"harden", th_harden},
  {"harden_defaults", th_harden_defaults},
  {"harden_report", th_harden_report},
  {"inspect", th_inspect},
  {"key_kind", th_key_kind},
  {"chain", th_chain},
  {"load_key", th_load_key},
  {"quote", th_quote_value},
  {"dns_query", th_dns_query},
  {"dns_parse", th_dns_parse},
  {"dane_match", th_dane_match},
  {"suites", th_suites_list},
  {"suite", th_suite_lookup},
  {"groups", th_groups_list},
  {"client_hello", th_client_hello},
  {"parse_server_flight", th_parse_server_flight},
  {NULL, NULL}
};

/* Find the argument a failing metamethod most likely belongs to: the only
 * table or userdata argument, else the first one whose metatable (or, one
 * level down, a table in it with a metatable) is set. 0: none found. */
static int arg_with_metatable(lua_State *L, int first, int n) {
  int i, tables = 0, only = 0;
  for (i = first; i < first + n; i++) {
    if (lua_type(L, i) == LUA_TTABLE || lua_type(L, i) == LUA_TUSERDATA) {
      tables++;
      only = i;
    }
  }
  if (tables == 1) return only - first + 1;
  for (i = first; i < first + n; i++) {
    if (lua_type(L, i) != LUA_TTABLE) continue;
    if (lua_getmetatable(L, i)) {
      lua_pop(L, 1);
      return i - first + 1;
    }
    lua_pushnil(L);
    while (lua_next(L, i)) {
      int has = lua_type(L, -1) == LUA_TTABLE && lua_getmetatable(L, -1);
      lua_pop(L, has ? 2 : 1);
      if (has) {
        lua_pop(L, 1);
        return i - first + 1;
      }
    }
  }
  return 0;
}

/* Every function of the module runs behind this guard. Where the core
 * lets an argument's own metamethods run (__pairs of a merge layer,
 * __index and __len of option tables), one of them may raise; its error is
 * then reported as an error of the tlsharden function, naming the
 * argument, instead of coming out unchanged. Errors the core raised itself
 * already name the function and pass through. */
static int guard(lua_State *L) {
  int n = lua_gettop(L), i, status, arg;
  const char *name = lua_tostring(L, lua_upvalueindex(2)), *msg;
  lua_pushvalue(L, lua_upvalueindex(1));
  for (i = 1; i <= n; i++) lua_pushvalue(L, i);
  status = lua_pcall(L, n, LUA_MULTRET, 0);
  if (status == LUA_OK) return lua_gettop(L) - n;
  msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  if (status == LUA_ERRMEM || (msg && strstr(msg, "tlsharden.") != NULL))
    return lua_error(L);
  if (!msg) msg = lua_pushfstring(L, "(an error object of type %s)", luaL_typename(L, -1));
  arg = arg_with_metatable(L, 1, n);
  if (arg > 0)
    return luaL_error(L, "tlsharden.%s: bad argument #%d: a metamethod of the argument"
                      " raised: %s", name, arg, msg);
  return luaL_error(L, "tlsharden.%s: a metamethod of an argument raised: %s", name, msg);
}

int luaopen_tlsharden_core(lua_State *L) {
  const luaL_Reg *f;
  th_owned_register(L);
  lua_createtable(L, 0, (int)(sizeof core_funcs / sizeof core_funcs[0]) + 5);
  for (f = core_funcs; f->name; f++) {
    lua_pushcfunction(L, f->func);
    lua_pushstring(L, f->name);
    lua_pushcclosure(L, guard, 2);
    lua_setfield(L, -2, f->name);
  }
  lua_pushliteral(L, TH_VERSION);
  lua_setfield(L, -2, "_VERSION");
  th_push_protocols(L);
  lua_setfield(L, -2, "protocols");
  lua_createtable(L, 0, 1);
  th_set_int(L, "dh_min_bits", TH_DH_MIN_BITS);
  lua_setfield(L, -2, "limits");
  lua_pushstring(L, OpenSSL_version(OPENSSL_VERSION));
  lua_setfield(L, -2, "openssl_version");
  lua_pushinteger(L, (lua_Integer)OpenSSL_version_num());
  lua_setfield(L, -2, "openssl_version_number");
  return 1;
}
