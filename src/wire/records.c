/* TLS records after the first flight, for the vulnerability checks of the
 * scanner: one record built from its parts, a heartbeat request, a reader
 * of the records a server sends back, and ROBOT's ClientKeyExchange
 * messages with chosen padding faults. Pure: bytes in, Lua table
 * out. The reader keeps no payload: of an alert its level and
 * description, of a heartbeat its type and the lengths (claimed and
 * carried), of a handshake record the first message type when it is
 * plaintext; what a heartbeat response carries is never kept. Whatever a
 * broken or hostile peer sends becomes `malformed` in the result, never an
 * error. */
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "wire/flight.h"

#define RECORD_LIMIT (16384 + 2048)  /* RFC 5246 6.2.3: a record's largest payload */

static const th_named content_types[] = {
  {20, "change_cipher_spec"}, {21, "alert"}, {22, "handshake"}, {23, "application_data"},
  {24, "heartbeat"}, {0, NULL}
};

/* A content type: a number 0..255, or a name of content_types. */
static unsigned read_type(lua_State *L, const char *fn, int idx) {
  int i;
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Number n = lua_tonumber(L, idx);
    if (n >= 0 && n <= 255 && n == (lua_Number)(int)n) return (unsigned)n;
  } else if (lua_type(L, idx) == LUA_TSTRING) {
    const char *s = lua_tostring(L, idx);
    for (i = 0; content_types[i].name; i++)
      if (strcmp(content_types[i].name, s) == 0) return content_types[i].code;
  }
  th_arg_error(L, fn, idx, "type", "expected a content type (0-255, 'handshake', 'alert',"
               " 'change_cipher_spec', 'application_data' or 'heartbeat'), got %s", th_quote(L, idx));
  return 0;
}

/* A record version: a number 0x0300..0x03FF, or a version name
 * ("sslv3" ... "tlsv1_2"; "tlsv1_3" records carry 0x0303). */
static unsigned read_version(lua_State *L, const char *fn, int idx) {
  int i;
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Number n = lua_tonumber(L, idx);
    if (n >= 0x0300 && n <= 0x03FF && n == (lua_Number)(int)n) return (unsigned)n;
  } else if (lua_type(L, idx) == LUA_TSTRING) {
    const char *s = lua_tostring(L, idx);
    for (i = TH_V_SSL3; i < TH_NVERSIONS; i++)
      if (strcmp(th_versions[i].name, s) == 0) return i == TH_V_TLS13 ? 0x0303 : (unsigned)th_versions[i].wire;
  }
  th_arg_error(L, fn, idx, "version", "expected a record version (0x0300-0x03FF or 'sslv3' ..."
               " 'tlsv1_3'), got %s", th_quote(L, idx));
  return 0;
}

/* tlsharden.wire.record(type, version, payload): one TLS record. */
int th_wire_record(lua_State *L) {
  static const char *fn = "wire.record";
  unsigned type = read_type(L, fn, 1), version = read_version(L, fn, 2);
  size_t n;
  const char *payload;
  luaL_Buffer b;
  unsigned char head[5];
  if (lua_type(L, 3) != LUA_TSTRING)
    return th_arg_error(L, fn, 3, "payload", "expected a string, got %s", th_quote(L, 3));
  payload = lua_tolstring(L, 3, &n);
  if (n > RECORD_LIMIT)
    return th_arg_error(L, fn, 3, "payload", "at most %d bytes, got %d", RECORD_LIMIT, (int)n);
  head[0] = (unsigned char)type;
  head[1] = (unsigned char)(version >> 8);
  head[2] = (unsigned char)(version & 0xFF);
  head[3] = (unsigned char)(n >> 8);
  head[4] = (unsigned char)(n & 0xFF);
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, (const char *)head, 5);
  luaL_addlstring(&b, payload, n);
  luaL_pushresult(&b);
  return 1;
}

/* tlsharden.wire.heartbeat_request(claimed [, payload]): a HeartbeatRequest
 * message (RFC 6520) that claims `claimed` payload bytes and carries
 * `payload` (default none) and no padding: a peer that answers it with
 * more than it carries sends memory it should not (Heartbleed). */
int th_wire_heartbeat_request(lua_State *L) {
  static const char *fn = "wire.heartbeat_request";
  lua_Integer claimed;
  size_t n = 0;
  const char *payload = "";
  luaL_Buffer b;
  unsigned char head[3];
  if (!lua_isinteger(L, 1) || (claimed = lua_tointeger(L, 1)) < 0 || claimed > 0xFFFF)
    return th_arg_error(L, fn, 1, "claimed", "expected a length from 0 to 65535, got %s", th_quote(L, 1));
  if (!lua_isnoneornil(L, 2)) {
    if (lua_type(L, 2) != LUA_TSTRING)
      return th_arg_error(L, fn, 2, "payload", "expected a string, got %s", th_quote(L, 2));
    payload = lua_tolstring(L, 2, &n);
    if (n > 0xFFFF) return th_arg_error(L, fn, 2, "payload", "at most 65535 bytes, got %d", (int)n);
  }
  head[0] = 1;  /* heartbeat_request */
  head[1] = (unsigned char)(claimed >> 8);
  head[2] = (unsigned char)(claimed & 0xFF);
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, (const char *)head, 3);
  luaL_addlstring(&b, payload, n);
  luaL_pushresult(&b);
  return 1;
}

/* One record's entry, on top of the stack. */
static void push_record(lua_State *L, unsigned type, unsigned version, const unsigned char *p,
                        size_t n) {
  lua_createtable(L, 0, 6);
  th_set_int(L, "type", type);
  th_set_string(L, "name", th_flight_lookup(content_types, type));
  th_set_int(L, "version", version);
  th_set_int(L, "length", (lua_Integer)n);
  if (type == 21 && n == 2) {
    th_set_int(L, "level", p[0]);
    th_set_int(L, "description", p[1]);
    th_set_string(L, "alert", th_flight_alert_name(p[1]));
  } else if (type == 24 && n >= 3) {
    /* type, the payload length it claims, and what the record carries
     * beyond the 3 bytes of the header: payload and padding */
    th_set_int(L, "heartbeat", p[0]);
    th_set_int(L, "claimed", ((lua_Integer)p[1] << 8) | p[2]);
    th_set_int(L, "carried", (lua_Integer)n - 3);
  } else if (type == 22 && n >= 4) {
    unsigned long mlen = ((unsigned long)p[1] << 16) | ((unsigned long)p[2] << 8) | p[3];
    if (p[0] <= 24 && mlen <= n - 4) th_set_int(L, "handshake", p[0]);
  }
}

/* tlsharden.wire.parse_records(bytes): the complete records in bytes, in
 * order: { records = { { type, name, version, length [, level,
 * description, alert] [, heartbeat, claimed, carried] [, handshake] } },
 * consumed, need (bytes still missing of the next record, 0 when bytes
 * end at a record's end), malformed (the first bytes that are no TLS
 * record; reading stops there) }. */
int th_wire_parse_records(lua_State *L) {
  static const char *fn = "wire.parse_records";
  size_t n, off = 0;
  const unsigned char *p;
  int count = 0;
  if (lua_type(L, 1) != LUA_TSTRING)
    return th_arg_error(L, fn, 1, "bytes", "expected a string, got %s", th_quote(L, 1));
  p = (const unsigned char *)lua_tolstring(L, 1, &n);
  lua_createtable(L, 0, 4);
  lua_newtable(L);
  for (;;) {
    size_t rlen;
    unsigned type, version;
    if (n - off < 5) {
      lua_setfield(L, -2, "records");
      th_set_int(L, "need", n - off == 0 ? 0 : (lua_Integer)(5 - (n - off)));
      break;
    }
    type = p[off];
    version = ((unsigned)p[off + 1] << 8) | p[off + 2];
    rlen = ((size_t)p[off + 3] << 8) | p[off + 4];
    if (type < 20 || type > 24 || (version >> 8) != 3 || rlen > RECORD_LIMIT) {
      lua_setfield(L, -2, "records");
      th_set_bool(L, "malformed", 1);
      th_set_int(L, "need", 0);
      break;
    }
    if (n - off - 5 < rlen) {
      lua_setfield(L, -2, "records");
      th_set_int(L, "need", (lua_Integer)(rlen - (n - off - 5)));
      break;
    }
    push_record(L, type, version, p + off + 5, rlen);
    lua_rawseti(L, -2, ++count);
    off += 5 + rlen;
  }
  th_set_int(L, "consumed", (lua_Integer)off);
  return 1;
}

/* ---- ROBOT: ClientKeyExchange messages with chosen PKCS#1 v1.5 faults ---- */

static const char *const robot_variants[] = {
  "valid", "bad_first_bytes", "zero_misplaced", "no_zero", "wrong_version", NULL
};

/* Fill block (k bytes) with a PKCS#1 v1.5 type 2 encoding of a 48-byte
 * premaster secret that starts with version, with the fault of variant
 * (an index of robot_variants), as the ROBOT paper's oracle tests do. */
static int robot_block(unsigned char *block, size_t k, int variant, unsigned version) {
  size_t i, pad_end = k - 49;  /* the index of the 0x00 separator */
  if (RAND_bytes(block, (int)k) != 1) return 0;
  /* no zero byte but where the variant puts one: the padding, and the
   * premaster's random bytes too, so that each fault is only itself */
  for (i = 2; i < k; i++)
    while (block[i] == 0) if (RAND_bytes(block + i, 1) != 1) return 0;
  block[0] = 0x00;
  block[1] = 0x02;
  block[pad_end] = 0x00;
  block[pad_end + 1] = (unsigned char)(version >> 8);
  block[pad_end + 2] = (unsigned char)(version & 0xFF);
  switch (variant) {
    case 1: block[0] = 0x41; block[1] = 0x17; break;              /* wrong first bytes */
    case 2: block[pad_end] = 0x11; block[pad_end - 8] = 0x00; break;  /* 0x00 too early */
    case 3: block[pad_end] = 0x11; break;                             /* no 0x00 at all */
    case 4: block[pad_end + 1] = 0x02; block[pad_end + 2] = 0x02; break;  /* wrong version */
    default: break;
  }
  return 1;
}

/* tlsharden.wire.robot_key_exchange(cert_der, variant [, version]): a
 * ClientKeyExchange handshake message for the RSA key of the certificate
 * (DER), its premaster secret encrypted without padding checks after
 * robot_block laid out the PKCS#1 v1.5 encoding with the fault of variant
 * ("valid", "bad_first_bytes", "zero_misplaced", "no_zero",
 * "wrong_version"). version: the premaster's version (default "tlsv1_2").
 * Returns the message, or nil and why (the key is no RSA key). */
int th_wire_robot_key_exchange(lua_State *L) {
  static const char *fn = "wire.robot_key_exchange";
  size_t n, outlen = 0;
  const unsigned char *p;
  int variant = -1, i, ok = 0;
  unsigned version = 0x0303;
  X509 *x = NULL;
  EVP_PKEY *key;
  EVP_PKEY_CTX *ctx = NULL;
  unsigned char *block = NULL, *out = NULL;
  size_t k;
  if (lua_type(L, 1) != LUA_TSTRING)
    return th_arg_error(L, fn, 1, "cert_der", "expected a DER certificate, got %s", th_quote(L, 1));
  if (lua_type(L, 2) == LUA_TSTRING)
    for (i = 0; robot_variants[i]; i++)
      if (strcmp(robot_variants[i], lua_tostring(L, 2)) == 0) variant = i;
  if (variant < 0)
    return th_arg_error(L, fn, 2, "variant", "expected 'valid', 'bad_first_bytes', 'zero_misplaced', 'no_zero'"
                        " or 'wrong_version', got %s", th_quote(L, 2));
  if (!lua_isnoneornil(L, 3)) version = read_version(L, fn, 3);
  p = (const unsigned char *)lua_tolstring(L, 1, &n);
  x = d2i_X509(NULL, &p, (long)n);
  if (!x) {
    ERR_clear_error();
    lua_pushnil(L);
    lua_pushliteral(L, "not a DER certificate");
    return 2;
  }
  key = X509_get0_pubkey(x);
  if (!key || EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA || (k = (size_t)EVP_PKEY_get_size(key)) < 64 ||
      k > 2048) {
    X509_free(x);
    ERR_clear_error();
    lua_pushnil(L);
    lua_pushliteral(L, "the certificate's key is no RSA key");
    return 2;
  }
  block = OPENSSL_malloc(k);
  out = OPENSSL_malloc(k + 6);
  ctx = EVP_PKEY_CTX_new(key, NULL);
  if (block && out && ctx && robot_block(block, k, variant, version) && EVP_PKEY_encrypt_init(ctx) > 0 &&
      EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING) > 0) {
    outlen = k;
    ok = EVP_PKEY_encrypt(ctx, out + 6, &outlen, block, k) > 0 && outlen == k;
  }
  if (ok) {
    /* handshake type 16, length, and the TLS encrypted premaster's length */
    out[0] = 16;
    out[1] = (unsigned char)((k + 2) >> 16);
    out[2] = (unsigned char)((k + 2) >> 8);
    out[3] = (unsigned char)((k + 2) & 0xFF);
    out[4] = (unsigned char)(k >> 8);
    out[5] = (unsigned char)(k & 0xFF);
    lua_pushlstring(L, (const char *)out, k + 6);
  }
  OPENSSL_free(block);
  OPENSSL_free(out);
  EVP_PKEY_CTX_free(ctx);
  X509_free(x);
  if (!ok) {
    th_push_ssl_errors(L, "RSA encryption failed");
    return th_error(L, fn, "%s", lua_tostring(L, -1));
  }
  return 1;
}
