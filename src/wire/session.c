/* TLS sessions, for the vulnerability checks that resume one on a
 * connection of their own: `wire.parse_session` reads one as OpenSSL
 * writes it (`openssl s_client -sess_out`: PEM "SSL SESSION PARAMETERS",
 * or the same DER), bytes in and a Lua table out; `context.session` takes
 * the session of a LuaSec connection as that PEM. The table says the
 * protocol and suite, the session id, the ticket and how much early data
 * the ticket allows; the master secret is never shown. Bytes that are no
 * session give nil and a reason, never an error. */
#include <string.h>

#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "wire/flight.h"

#define SESSION_LIMIT (256 * 1024)  /* bytes: a session with a long chain is a few KiB */

static SSL_SESSION *read_session(const char *s, size_t n) {
  size_t i = 0;
  while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) i++;
  if (i < n && s[i] == '-') {
    BIO *b = BIO_new_mem_buf(s, (int)n);
    SSL_SESSION *sess = b ? PEM_read_bio_SSL_SESSION(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    return sess;
  } else {
    const unsigned char *p = (const unsigned char *)s;
    return d2i_SSL_SESSION(NULL, &p, (long)n);
  }
}

/* The table of a session (see the file's head). */
static void push_session(lua_State *L, SSL_SESSION *sess) {
  size_t len = 0;
  const unsigned char *bytes = NULL;
  const SSL_CIPHER *cipher;
  const th_suite *suite;
  const char *name;
  unsigned int idlen = 0;
  int version;
  lua_createtable(L, 0, 10);
  version = SSL_SESSION_get_protocol_version(sess);
  th_set_int(L, "version", version);
  name = th_flight_version_name((unsigned)version);
  if (name) th_set_string(L, "protocol", name);
  cipher = SSL_SESSION_get0_cipher(sess);
  if (cipher) {
    uint32_t id = (uint32_t)SSL_CIPHER_get_protocol_id(cipher);
    th_set_int(L, "suite", (lua_Integer)id);
    suite = th_suite_find(id);
    if (suite) th_set_string(L, "suite_name", suite->openssl ? suite->openssl : suite->iana);
  }
  bytes = SSL_SESSION_get_id(sess, &idlen);
  th_set_bytes(L, "session_id", bytes, idlen);
  th_set_bool(L, "resumable", SSL_SESSION_is_resumable(sess));
  if (SSL_SESSION_has_ticket(sess)) {
    SSL_SESSION_get0_ticket(sess, &bytes, &len);
    th_set_bytes(L, "ticket", bytes, len);
    th_set_int(L, "ticket_lifetime", (lua_Integer)SSL_SESSION_get_ticket_lifetime_hint(sess));
  }
  th_set_int(L, "max_early_data", (lua_Integer)SSL_SESSION_get_max_early_data(sess));
  SSL_SESSION_get0_alpn_selected(sess, &bytes, &len);
  if (len > 0) th_set_bytes(L, "alpn", bytes, len);
}

int th_wire_parse_session(lua_State *L) {
  static const char *fn = "wire.parse_session";
  size_t n;
  const char *s;
  SSL_SESSION *sess;
  if (lua_type(L, 1) != LUA_TSTRING)
    return th_arg_error(L, fn, 1, "session", "expected a session (PEM or DER bytes), got %s", th_quote(L, 1));
  s = lua_tolstring(L, 1, &n);
  if (n > SESSION_LIMIT) {
    lua_pushnil(L);
    lua_pushfstring(L, "%d bytes, more than a session has (at most %d)", (int)n, SESSION_LIMIT);
    return 2;
  }
  sess = read_session(s, n);
  ERR_clear_error();
  if (!sess) {
    lua_pushnil(L);
    lua_pushliteral(L, "not a TLS session (PEM 'SSL SESSION PARAMETERS' or its DER)");
    return 2;
  }
  push_session(L, sess);
  SSL_SESSION_free(sess);
  return 1;
}

/* tlsharden.context.session(conn): the session of a LuaSec connection as
 * PEM (what `openssl s_client -sess_in` reads), or nil and why. */
int th_connection_session(lua_State *L) {
  static const char *fn = "context.session";
  SSL *ssl = th_check_connection(L, 1, fn);
  SSL_SESSION *sess = SSL_get1_session(ssl);
  BIO *b;
  BUF_MEM *mem = NULL;
  if (!sess) {
    lua_pushnil(L);
    lua_pushliteral(L, "the connection has no session (no handshake was made)");
    return 2;
  }
  b = BIO_new(BIO_s_mem());
  if (!b || !PEM_write_bio_SSL_SESSION(b, sess) || BIO_get_mem_ptr(b, &mem) <= 0 || !mem) {
    BIO_free(b);
    SSL_SESSION_free(sess);
    return th_raise(L, "failed", fn, "cannot write the session as PEM");
  }
  lua_pushlstring(L, mem->data, mem->length);
  BIO_free(b);
  SSL_SESSION_free(sess);
  ERR_clear_error();
  return 1;
}

