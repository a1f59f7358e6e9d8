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

#include "tlsharden.h"

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

static void free_bio(void *p) { BIO_free((BIO *)p); }
static void free_p8(void *p) { PKCS8_PRIV_KEY_INFO_free((PKCS8_PRIV_KEY_INFO *)p); }
static void free_pkey(void *p) { EVP_PKEY_free((EVP_PKEY *)p); }
static void free_der(void *p) { OPENSSL_free(p); }

/* The objects read_pkcs8 makes, each owned by a userdata on the stack so
 * that an error cannot leak them, and freed as soon as the key is loaded. */
enum { OWN_BIO, OWN_P8, OWN_DER, OWN_PKEY, OWN_N };

static void release_all(th_owned *own[OWN_N]) {
  int i;
  for (i = 0; i < OWN_N; i++)
    if (own[i]) th_release(own[i]);
}

/* Decode the first unencrypted PKCS#8 key in path; NULL when there is none
 * or its type is not one of the above. */
static EVP_PKEY *read_pkcs8(lua_State *L, const char *path, th_owned *own[OWN_N]) {
  BIO *bio;
  PKCS8_PRIV_KEY_INFO *p8;
  const ASN1_OBJECT *alg;
  const char *type;
  unsigned char *der = NULL;
  const unsigned char *in;
  size_t left;
  int len;
  EVP_PKEY *pkey = NULL;
  OSSL_DECODER_CTX *dctx;
  bio = BIO_new_file(path, "r");
  own[OWN_BIO] = th_own(L, bio, free_bio);
  if (!bio) return NULL;
  p8 = PEM_read_bio_PKCS8_PRIV_KEY_INFO(bio, NULL, NULL, NULL);
  own[OWN_P8] = th_own(L, p8, free_p8);
  if (!p8 || !PKCS8_pkey_get0(&alg, NULL, NULL, NULL, p8)) return NULL;
  type = key_type(OBJ_obj2nid(alg));
  if (!type) return NULL;
  len = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
  own[OWN_DER] = th_own(L, len > 0 ? der : NULL, free_der);
  if (len <= 0) return NULL;
  own[OWN_PKEY] = th_own(L, NULL, free_pkey);
  dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, "DER", "PrivateKeyInfo", type,
                                       EVP_PKEY_KEYPAIR, NULL, NULL);
  if (!dctx) return NULL;
  in = der;
  left = (size_t)len;
  if (!OSSL_DECODER_from_data(dctx, &in, &left)) pkey = NULL;
  OSSL_DECODER_CTX_free(dctx);
  own[OWN_PKEY]->ptr = pkey;
  return pkey;
}

/* tlsharden.core.load_key(ctx, path): loads the key in path into the
 * context when it is an unencrypted PKCS#8 key of a known type and returns
 * true; returns false, reason when it is not (the caller then loads it the
 * way LuaSec does). A key that does not match the context's certificate is
 * an error, worded as LuaSec words it. */
int th_load_key(lua_State *L) {
  SSL_CTX *ctx = th_check_context(L, 1, "load_key", NULL);
  size_t len;
  const char *path = lua_tolstring(L, 2, &len);
  EVP_PKEY *pkey;
  X509 *cert;
  th_owned *own[OWN_N] = {NULL, NULL, NULL, NULL};
  int top;
  if (lua_type(L, 2) != LUA_TSTRING || len == 0 || strlen(path) != len)
    return th_error(L, "load_key", "bad argument #2 'path': expected a file path, got %s",
                    lua_type(L, 2) == LUA_TSTRING ? "a string with a NUL byte or empty"
                                                  : luaL_typename(L, 2));
  lua_settop(L, 2);
  top = lua_gettop(L);
  ERR_clear_error();
  pkey = read_pkcs8(L, path, own);
  if (!pkey) {
    release_all(own);
    ERR_clear_error();
    lua_settop(L, top);
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "not an unencrypted PKCS#8 key of a known type");
    return 2;
  }
  /* The key must belong to the certificate already loaded, if any (OpenSSL
   * would put a key of another type in a slot of its own, unpaired). */
  cert = SSL_CTX_get0_certificate(ctx);
  if ((cert && !X509_check_private_key(cert, pkey)) || !SSL_CTX_use_PrivateKey(ctx, pkey)) {
    th_push_ssl_errors(L, "refused by OpenSSL");
    return th_error(L, "load_key", "private key does not match public key (%s: %s)", path,
                    lua_tostring(L, -1));
  }
  release_all(own);
  ERR_clear_error();
  lua_settop(L, top);
  lua_pushboolean(L, 1);
  return 1;
}
