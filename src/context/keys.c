/* Loading a server's private key into a LuaSec context, quickly.
 *
 * LuaSec loads a key with SSL_CTX_use_PrivateKey_file, which on OpenSSL 3
 * asks every decoder of every provider to try the file: about 370 µs for a
 * P-256 or RSA-2048 key, half the cost of a whole ssl.newcontext. An
 * unencrypted PKCS#8 key ("BEGIN PRIVATE KEY", what prosodyctl, certbot and
 * openssl genpkey write) names its algorithm, so a decoder for that one key
 * type does the same work in about a third of the time. Anything else
 * (encrypted, legacy PEM types, unknown algorithms) is left to LuaSec. */
#include <string.h>

#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/tlsharden.h"

/* The OpenSSL key type for a PKCS#8 algorithm, or NULL. */
static const char *key_type(int nid) {
  switch (nid) {
    case NID_X9_62_id_ecPublicKey: return "EC";
    case NID_rsaEncryption: return "RSA";
    case NID_rsassaPss: return "RSA-PSS";
    case NID_ED25519: return "ED25519";
    case NID_ED448: return "ED448";
    default: return NULL;
  }
}

/* Decode the first unencrypted PKCS#8 key in path; NULL when there is none
 * or its type is not one of the above. Plain C: nothing here can raise a
 * Lua error, so every temporary is freed before it returns. */
static EVP_PKEY *read_pkcs8(const char *path) {
  BIO *bio = BIO_new_file(path, "r");
  PKCS8_PRIV_KEY_INFO *p8 = bio ? PEM_read_bio_PKCS8_PRIV_KEY_INFO(bio, NULL, NULL, NULL) : NULL;
  const ASN1_OBJECT *alg;
  const char *type = NULL;
  unsigned char *der = NULL;
  int len = 0;
  EVP_PKEY *pkey = NULL;
  if (p8 && PKCS8_pkey_get0(&alg, NULL, NULL, NULL, p8)) type = key_type(OBJ_obj2nid(alg));
  if (type) len = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
  if (len > 0) {
    const unsigned char *in = der;
    size_t left = (size_t)len;
    OSSL_DECODER_CTX *dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, "DER", "PrivateKeyInfo", type,
                                                           EVP_PKEY_KEYPAIR, NULL, NULL);
    if (!dctx || !OSSL_DECODER_from_data(dctx, &in, &left)) {
      EVP_PKEY_free(pkey);
      pkey = NULL;
    }
    OSSL_DECODER_CTX_free(dctx);
  }
  OPENSSL_clear_free(der, len > 0 ? (size_t)len : 0);
  PKCS8_PRIV_KEY_INFO_free(p8);
  BIO_free(bio);
  return pkey;
}

/* tlsharden.core.load_key(ctx, path): loads the key in path into the
 * context when it is an unencrypted PKCS#8 key of a known type and returns
 * true; returns false, reason when it is not (the caller then loads it the
 * way LuaSec does). A key that does not match the context's certificate is
 * an error, worded as LuaSec words it. */
int th_load_key(lua_State *L) {
  SSL_CTX *ctx = th_check_context(L, 1, "context.load_key", NULL);
  size_t len;
  const char *path = lua_tolstring(L, 2, &len);
  EVP_PKEY *pkey;
  X509 *cert;
  int ok;
  char why[256] = "refused by OpenSSL";
  if (lua_type(L, 2) != LUA_TSTRING || len == 0 || strlen(path) != len)
    return th_arg_error(L, "context.load_key", 2, "path", "expected a file path, got %s",
                    lua_type(L, 2) == LUA_TSTRING ? "a string with a NUL byte or empty"
                                                  : luaL_typename(L, 2));
  ERR_clear_error();
  pkey = read_pkcs8(path);
  if (!pkey) {
    ERR_clear_error();
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "not an unencrypted PKCS#8 key of a known type");
    return 2;
  }
  /* The key must belong to the certificate already loaded, if any (OpenSSL
   * would put a key of another type in a slot of its own, unpaired). */
  cert = SSL_CTX_get0_certificate(ctx);
  ok = (!cert || X509_check_private_key(cert, pkey)) && SSL_CTX_use_PrivateKey(ctx, pkey);
  EVP_PKEY_free(pkey);  /* the context holds its own reference */
  if (!ok) {
    unsigned long e = ERR_peek_last_error();
    if (e) ERR_error_string_n(e, why, sizeof why);
    ERR_clear_error();
    return th_error(L, "context.load_key", "private key does not match public key (%s: %s)", path, why);
  }
  ERR_clear_error();
  lua_pushboolean(L, 1);
  return 1;
}
