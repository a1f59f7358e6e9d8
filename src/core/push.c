/* C values into Lua tables: one family of field setters for the table on
 * top of the stack, used by every file that builds a result, and the
 * renderings of certificate names and times. */
#include <time.h>

#include <openssl/x509.h>

#include "core/tlsharden.h"

void th_set_int(lua_State *L, const char *k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

void th_set_bool(lua_State *L, const char *k, int v) {
  lua_pushboolean(L, v);
  lua_setfield(L, -2, k);
}

void th_set_string(lua_State *L, const char *k, const char *v) {
  if (!v) return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

void th_set_bytes(lua_State *L, const char *k, const void *p, size_t n) {
  lua_pushlstring(L, (const char *)p, n);
  lua_setfield(L, -2, k);
}

void th_set_int_or_false(lua_State *L, const char *k, lua_Integer v) {
  if (v < 0) lua_pushboolean(L, 0);
  else lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

void th_set_string_or_false(lua_State *L, const char *k, const char *v) {
  if (v) lua_pushstring(L, v);
  else lua_pushboolean(L, 0);
  lua_setfield(L, -2, k);
}

void th_push_asn1_time(lua_State *L, const ASN1_TIME *t) {
  struct tm tm;
  char buf[32];
  if (!t || !ASN1_TIME_to_tm(t, &tm)) {
    lua_pushnil(L);
    return;
  }
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  lua_pushstring(L, buf);
}

void th_push_x509_name(lua_State *L, const X509_NAME *name) {
  BIO *bio = BIO_new(BIO_s_mem());
  char *data;
  long len;
  if (!bio) {
    lua_pushnil(L);
    return;
  }
  X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
  len = BIO_get_mem_data(bio, &data);
  lua_pushlstring(L, data, (size_t)len);
  BIO_free(bio);
}
