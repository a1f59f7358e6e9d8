/* DANE (RFC 6698, RFC 7671): which TLSA record matches which certificate
 * of a served chain. Pure matching: the caller decides what a match is
 * worth, and a match only counts when the TLSA answer was DNSSEC-
 * authenticated (lua/tlsharden/dane.lua says so in its verdict). */
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/tlsharden.h"

#define FN "wire.dane_match"
#define MAX_RECORDS 256
#define MAX_CERTS 32
#define MAX_DER (1 << 20)

typedef struct tlsa_rec {
  int usage, selector, mtype;
  const char *hex;  /* the record's data in hex, kept alive on the stack */
  size_t hexlen;
  int skipped;      /* not a TLSA record (an RRSIG of the answer, say) */
  const char *unusable; /* why the record cannot match, or NULL */
} tlsa_rec;

typedef struct cert_info {
  const unsigned char *der;
  size_t derlen;
  int parsed;
  int issued_by_next;  /* the next certificate issued and signed this one */
  unsigned char sha256[2][32], sha512[2][64]; /* [selector] */
  unsigned char *spki;  /* OpenSSL's buffer, freed before results are pushed */
  int spkilen;
} cert_info;

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int hex_equals(const char *hex, size_t hexlen, const unsigned char *b, size_t n) {
  size_t i;
  if (hexlen != 2 * n) return 0;
  for (i = 0; i < n; i++)
    if (((hexval(hex[2 * i]) << 4) | hexval(hex[2 * i + 1])) != b[i]) return 0;
  return 1;
}

static int int_field(lua_State *L, int t, int item, const char *key) {
  lua_Integer v;
  lua_getfield(L, t, key);
  if (!th_integer(L, -1, &v) || v < 0 || v > 255)
    return th_arg_error(L, FN, 1, "records", "item %d field '%s': expected an integer"
                    " 0-255, got %s", item, key, th_quote(L, -1));
  lua_pop(L, 1);
  return (int)v;
}

/* Read record i of the table at 1 into r; its data string stays pushed. */
static void read_record(lua_State *L, int i, tlsa_rec *r) {
  size_t k;
  int t;
  lua_rawgeti(L, 1, i);
  if (lua_type(L, -1) != LUA_TTABLE)
    th_arg_error(L, FN, 1, "records", "item %d is %s, expected a TLSA record table", i,
             th_quote(L, -1));
  t = lua_gettop(L);
  memset(r, 0, sizeof *r);
  lua_getfield(L, t, "type");
  if (!lua_isnil(L, -1) && !(lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "TLSA") == 0)) {
    lua_pop(L, 2);
    r->skipped = 1;
    lua_pushnil(L);  /* keeps one slot per record */
    return;
  }
  lua_pop(L, 1);
  r->usage = int_field(L, t, i, "usage");
  r->selector = int_field(L, t, i, "selector");
  r->mtype = int_field(L, t, i, "matching_type");
  lua_getfield(L, t, "data");
  if (lua_type(L, -1) != LUA_TSTRING)
    th_arg_error(L, FN, 1, "records", "item %d field 'data': expected a hex string, got %s",
             i, th_quote(L, -1));
  r->hex = lua_tolstring(L, -1, &r->hexlen);
  for (k = 0; k < r->hexlen; k++)
    if (hexval((unsigned char)r->hex[k]) < 0) break;
  if (k < r->hexlen || r->hexlen % 2 != 0 || r->hexlen > 2 * MAX_DER)
    th_arg_error(L, FN, 1, "records", "item %d field 'data': expected a hex string of"
             " whole bytes, got %s", i, th_quote(L, -1));
  lua_remove(L, t);  /* keep the data string, drop the record table */
  if (r->usage > 3) r->unusable = "unknown certificate usage";
  else if (r->selector > 1) r->unusable = "unknown selector";
  else if (r->mtype > 2) r->unusable = "unknown matching type";
  else if (r->mtype == 0 && r->hexlen == 0) r->unusable = "empty data";
  else if (r->mtype == 1 && r->hexlen != 64) r->unusable = "SHA-256 data is not 32 bytes";
  else if (r->mtype == 2 && r->hexlen != 128) r->unusable = "SHA-512 data is not 64 bytes";
}

/* Parse one certificate and compute what records are compared with.
 * Plain C: nothing here raises. */
static void prepare_cert(cert_info *c, X509 **out) {
  const unsigned char *p = c->der;
  X509 *x = d2i_X509(NULL, &p, (long)c->derlen);
  *out = NULL;
  EVP_Digest(c->der, c->derlen, c->sha256[0], NULL, EVP_sha256(), NULL);
  EVP_Digest(c->der, c->derlen, c->sha512[0], NULL, EVP_sha512(), NULL);
  if (!x || p != c->der + c->derlen) {
    X509_free(x);
    return;
  }
  c->spkilen = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &c->spki);
  if (c->spkilen <= 0) {
    c->spki = NULL;
    X509_free(x);
    return;
  }
  EVP_Digest(c->spki, (size_t)c->spkilen, c->sha256[1], NULL, EVP_sha256(), NULL);
  EVP_Digest(c->spki, (size_t)c->spkilen, c->sha512[1], NULL, EVP_sha512(), NULL);
  c->parsed = 1;
  *out = x;
}

static int record_matches(const tlsa_rec *r, const cert_info *c) {
  const unsigned char *data = r->selector == 0 ? c->der : c->spki;
  size_t len = r->selector == 0 ? c->derlen : (size_t)c->spkilen;
  if (r->selector == 1 && !c->parsed) return 0;
  switch (r->mtype) {
    case 0: return hex_equals(r->hex, r->hexlen, data, len);
    case 1: return hex_equals(r->hex, r->hexlen, c->sha256[r->selector], 32);
    default: return hex_equals(r->hex, r->hexlen, c->sha512[r->selector], 64);
  }
}

/* Usages 1 and 3 name the end entity (the first certificate), 0 and 2 a
 * trust anchor, which the server sends above it (RFC 7671 §5.2). */
static int applies(const tlsa_rec *r, int cert) {
  return (r->usage == 1 || r->usage == 3) ? cert == 0 : cert > 0;
}

/* tlsharden.core.dane_match(records, chain) -> { matches, records, certs } */
int th_dane_match(lua_State *L) {
  int nrec, ncert, i, j, nmatch = 0;
  tlsa_rec *recs;
  cert_info *certs;
  unsigned char *hit;
  X509 *x509[MAX_CERTS];
  if (lua_type(L, 1) != LUA_TTABLE)
    return th_arg_error(L, FN, 1, "records", "expected a list of TLSA records, got %s",
                    th_quote(L, 1));
  if (lua_type(L, 2) != LUA_TTABLE)
    return th_arg_error(L, FN, 2, "chain", "expected a list of DER certificates, got %s",
                    th_quote(L, 2));
  lua_settop(L, 2);
  nrec = (int)lua_rawlen(L, 1);
  ncert = (int)lua_rawlen(L, 2);
  if (nrec > MAX_RECORDS)
    return th_arg_error(L, FN, 1, "records", "%d records (at most %d)", nrec, MAX_RECORDS);
  if (ncert == 0 || ncert > MAX_CERTS)
    return th_arg_error(L, FN, 2, "chain", "%d certificates (1 to %d)", ncert, MAX_CERTS);
  luaL_checkstack(L, nrec + ncert + 8, "too many records");
  /* Scratch space owned by Lua: records, certificates, the match matrix. */
  recs = (tlsa_rec *)lua_newuserdata(L, sizeof(tlsa_rec) * (size_t)(nrec + 1) +
                                        sizeof(cert_info) * (size_t)ncert + (size_t)(nrec * ncert + 1));
  certs = (cert_info *)(recs + nrec + 1);
  hit = (unsigned char *)(certs + ncert);
  memset(certs, 0, sizeof(cert_info) * (size_t)ncert);
  memset(hit, 0, (size_t)(nrec * ncert + 1));
  for (i = 0; i < nrec; i++) read_record(L, i + 1, &recs[i]);
  for (j = 0; j < ncert; j++) {
    lua_rawgeti(L, 2, j + 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      return th_arg_error(L, FN, 2, "chain", "item %d is %s, expected a DER certificate"
                      " string", j + 1, th_quote(L, -1));
    certs[j].der = (const unsigned char *)lua_tolstring(L, -1, &certs[j].derlen);
    if (certs[j].derlen == 0 || certs[j].derlen > MAX_DER)
      return th_arg_error(L, FN, 2, "chain", "item %d has %d bytes (1 to %d)", j + 1,
                      (int)certs[j].derlen, MAX_DER);
  }
  /* From here to the frees nothing raises. */
  for (j = 0; j < ncert; j++) prepare_cert(&certs[j], &x509[j]);
  for (j = 0; j + 1 < ncert; j++)
    certs[j].issued_by_next = x509[j] && x509[j + 1] &&
      X509_check_issued(x509[j + 1], x509[j]) == X509_V_OK &&
      X509_verify(x509[j], X509_get0_pubkey(x509[j + 1])) == 1;
  for (i = 0; i < nrec; i++) {
    if (recs[i].skipped || recs[i].unusable) continue;
    for (j = 0; j < ncert; j++)
      if (applies(&recs[i], j) && record_matches(&recs[i], &certs[j])) {
        hit[i * ncert + j] = 1;
        nmatch++;
      }
  }
  for (j = 0; j < ncert; j++) {
    X509_free(x509[j]);
    OPENSSL_free(certs[j].spki);
    certs[j].spki = NULL;
  }
  ERR_clear_error();

  lua_createtable(L, 0, 3);
  lua_createtable(L, nmatch, 0);
  nmatch = 0;
  for (i = 0; i < nrec; i++)
    for (j = 0; j < ncert; j++) {
      int k, linked = 1;
      if (!hit[i * ncert + j]) continue;
      for (k = 0; k < j; k++) linked = linked && certs[k].issued_by_next;
      lua_createtable(L, 0, 4);
      lua_pushinteger(L, i + 1);
      lua_setfield(L, -2, "record");
      lua_pushinteger(L, j + 1);
      lua_setfield(L, -2, "cert");
      lua_pushinteger(L, recs[i].usage);
      lua_setfield(L, -2, "usage");
      lua_pushboolean(L, linked);
      lua_setfield(L, -2, "chain_ok");
      lua_rawseti(L, -2, ++nmatch);
    }
  lua_setfield(L, -2, "matches");
  lua_createtable(L, nrec, 0);
  for (i = 0; i < nrec; i++) {
    lua_createtable(L, 0, 6);
    if (recs[i].skipped) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "skipped");
    } else {
      int n = 0;
      lua_pushinteger(L, recs[i].usage);
      lua_setfield(L, -2, "usage");
      lua_pushinteger(L, recs[i].selector);
      lua_setfield(L, -2, "selector");
      lua_pushinteger(L, recs[i].mtype);
      lua_setfield(L, -2, "matching_type");
      lua_pushboolean(L, recs[i].unusable == NULL);
      lua_setfield(L, -2, "usable");
      if (recs[i].unusable) {
        lua_pushstring(L, recs[i].unusable);
        lua_setfield(L, -2, "reason");
      }
      lua_newtable(L);
      for (j = 0; j < ncert; j++)
        if (hit[i * ncert + j]) {
          lua_pushinteger(L, j + 1);
          lua_rawseti(L, -2, ++n);
        }
      lua_setfield(L, -2, "certs");
    }
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "records");
  lua_createtable(L, ncert, 0);
  for (j = 0; j < ncert; j++) {
    lua_createtable(L, 0, 2);
    lua_pushboolean(L, certs[j].parsed);
    lua_setfield(L, -2, "parsed");
    if (j + 1 < ncert) {
      lua_pushboolean(L, certs[j].issued_by_next);
      lua_setfield(L, -2, "issued_by_next");
    }
    lua_rawseti(L, -2, j + 1);
  }
  lua_setfield(L, -2, "certs");
  return 1;
}
