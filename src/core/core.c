/* tlsharden.core: the C half of tlsharden. Each capability lives in its own
 * file, in a folder named for its job; this one holds the module table and
 * the guard every function of it runs behind. */

#include <openssl/opensslv.h>

#include "core/tlsharden.h"

/* The capabilities: tlsharden's own public functions (init.lua shows them
 * at the top of the tlsharden module). */
static const luaL_Reg core_funcs[] = {
  {"protocol", th_protocol},
  {"versions", th_versions_in_force},
  {"ciphers", th_ciphers},
  {"forward_secrecy", th_forward_secrecy},
  {"merge", th_merge},
  {"harden", th_harden},
  {"inspect", th_inspect},
  {"chain", th_chain},
  {"quote", th_quote_value},
  {NULL, NULL}
};

/* tlsharden.context: the lower-level tools for LuaSec contexts. */
static const luaL_Reg context_funcs[] = {
  {"answer_hello", th_context_answer_hello},
  {"harden_defaults", th_harden_defaults},
  {"harden_report", th_harden_report},
  {"key_kind", th_key_kind},
  {"load_key", th_load_key},
  {"option_names", th_option_names},
  {"session", th_connection_session},
  {NULL, NULL}
};

/* tlsharden.wire: the wire formats, bytes in and tables or bytes out. */
static const luaL_Reg wire_funcs[] = {
  {"suites", th_suites_list},
  {"suite", th_suite_lookup},
  {"groups", th_groups_list},
  {"client_hello", th_client_hello},
  {"replay_hello", th_replay_hello},
  {"parse_server_flight", th_parse_server_flight},
  {"parse_client_hello", th_parse_client_hello},
  {"record", th_wire_record},
  {"heartbeat_request", th_wire_heartbeat_request},
  {"parse_records", th_wire_parse_records},
  {"robot_key_exchange", th_wire_robot_key_exchange},
  {"parse_session", th_wire_parse_session},
  {"dns_query", th_dns_query},
  {"dns_parse", th_dns_parse},
  {"dns_rdata", th_dns_rdata},
  {"dane_match", th_dane_match},
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
  if (status == LUA_ERRMEM || th_is_error(L, -1)) return lua_error(L);
  msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  if (!msg) msg = lua_pushfstring(L, "(an error object of type %s)", luaL_typename(L, -1));
  arg = arg_with_metatable(L, 1, n);
  if (arg > 0)
    return th_arg_error(L, name, arg, NULL, "a metamethod of the argument raised: %s", msg);
  return th_error(L, name, "a metamethod of an argument raised: %s", msg);
}

/* Push f (at idx) behind the guard, named name. */
static void push_guarded(lua_State *L, int idx, const char *name) {
  lua_pushvalue(L, idx);
  lua_pushstring(L, name);
  lua_pushcclosure(L, guard, 2);
}

/* core.guard(name, f): f behind the same guard, for the functions the Lua
 * modules write (one rule for both halves). */
static int guard_function(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  push_guarded(L, 2, name);
  return 1;
}

/* The functions of list into the table on top of the stack, each behind
 * the guard under its public name (prefix .. name). */
static void set_guarded(lua_State *L, const luaL_Reg *list, const char *prefix) {
  const luaL_Reg *f;
  for (f = list; f->name; f++) {
    lua_pushcfunction(L, f->func);
    lua_pushfstring(L, "%s%s", prefix, f->name);
    push_guarded(L, -2, lua_tostring(L, -1));
    lua_setfield(L, -4, f->name);
    lua_pop(L, 2);
  }
}

int luaopen_tlsharden_core(lua_State *L) {
  th_owned_register(L);
  th_error_register(L);
  lua_createtable(L, 0, (int)(sizeof core_funcs / sizeof core_funcs[0]) + 10);
  set_guarded(L, core_funcs, "");
  lua_createtable(L, 0, (int)(sizeof context_funcs / sizeof context_funcs[0]));
  set_guarded(L, context_funcs, "context.");
  lua_setfield(L, -2, "context");
  lua_createtable(L, 0, (int)(sizeof wire_funcs / sizeof wire_funcs[0]));
  set_guarded(L, wire_funcs, "wire.");
  lua_setfield(L, -2, "wire");
  lua_pushcfunction(L, guard_function);
  lua_setfield(L, -2, "guard");
  th_error_functions(L);
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
