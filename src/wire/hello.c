/* ClientHello writer for a scanner: the first flight of an SSLv2, SSL 3.0
 * or TLS 1.0-1.3 client as bytes, for servers that no local library can
 * talk to any more (SSLv2, SSLv3, export and RC4 suites). Pure: options in,
 * bytes out, no I/O. Key shares are real public keys made with OpenSSL, so
 * that a TLS 1.3 server can answer with a ServerHello. Layouts: RFC 6101
 * (SSL 3.0), RFC 2246/4346/5246 section 7.4.1.2, RFC 8446 section 4.1.2,
 * and the SSLv2 CLIENT-HELLO (2-byte record header with the high bit set,
 * 3-byte cipher kinds). The options are read in hello_opts.c. */
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "wire/hello.h"

/* ---- writing (no Lua calls that can raise; frees what it makes) ---- */

typedef struct writer {
  unsigned char *buf;
  size_t len, cap;
  int overflow;
} writer;

static void put_u8(writer *w, unsigned v) {
  if (w->len + 1 > w->cap) { w->overflow = 1; return; }
  w->buf[w->len++] = (unsigned char)v;
}
static void put_u16(writer *w, unsigned v) { put_u8(w, (v >> 8) & 0xFF); put_u8(w, v & 0xFF); }
static void put_bytes(writer *w, const void *p, size_t n) {
  if (w->len + n > w->cap) { w->overflow = 1; return; }
  memcpy(w->buf + w->len, p, n);
  w->len += n;
}
/* Reserve a length field of size bytes; close_len fills it in. */
static size_t open_len(writer *w, int size) {
  size_t at = w->len;
  while (size-- > 0) put_u8(w, 0);
  return at;
}
static void close_len(writer *w, size_t at, int size) {
  size_t n;
  if (w->overflow) return;
  n = w->len - at - (size_t)size;
  if (size == 1 && n > 0xFF) w->overflow = 1;
  else if (size == 2 && n > 0xFFFF) w->overflow = 1;
  if (w->overflow) return;
  if (size == 3) w->buf[at++] = (unsigned char)(n >> 16);
  if (size >= 2) w->buf[at++] = (unsigned char)(n >> 8);
  w->buf[at] = (unsigned char)n;
}

static int random_bytes(unsigned char *p, size_t n) {
  return RAND_bytes(p, (int)n) == 1;
}

/* One KeyShareEntry with a fresh public key for g. */
static int put_key_share(writer *w, const th_group *g) {
  EVP_PKEY *pk = NULL;
  EVP_PKEY_CTX *ctx = NULL;
  unsigned char *pub = NULL;
  size_t n = 0;
  int ok = 0;
  if (strcmp(g->alg, "EC") == 0) {
    pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", g->curve);
  } else if (strcmp(g->alg, "DH") == 0) {
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL);
    if (ctx && EVP_PKEY_keygen_init(ctx) > 0 && EVP_PKEY_CTX_set_group_name(ctx, g->curve) > 0)
      EVP_PKEY_generate(ctx, &pk);
  } else {
    pk = EVP_PKEY_Q_keygen(NULL, NULL, g->alg);
  }
  if (pk) n = EVP_PKEY_get1_encoded_public_key(pk, &pub);
  if (n > 0 && n <= 0xFFFF) {
    put_u16(w, g->id);
    put_u16(w, (unsigned)n);
    put_bytes(w, pub, n);
    ok = 1;
  }
  OPENSSL_free(pub);
  EVP_PKEY_free(pk);
  EVP_PKEY_CTX_free(ctx);
  return ok;
}

/* RFC 8701's reserved values, one for each place they go. */
#define GREASE_SUITE 0x0A0A
#define GREASE_EXT_FIRST 0x1A1A
#define GREASE_EXT_LAST 0x2A2A
#define GREASE_GROUP 0x3A3A
#define GREASE_VERSION 0x4A4A
#define GREASE_SIGALG 0x5A5A

/* A list extension, led by grease (0: none). */
static void put_ext_list16(writer *w, unsigned type, const uint16_t *v, int n, unsigned grease) {
  size_t ext, list;
  int i;
  put_u16(w, type);
  ext = open_len(w, 2);
  list = open_len(w, 2);
  if (grease) put_u16(w, grease);
  for (i = 0; i < n; i++) put_u16(w, v[i]);
  close_len(w, list, 2);
  close_len(w, ext, 2);
}

/* The extensions block, in the order OpenSSL writes them. Returns 0 when a
 * key share cannot be made (name of its group in *failed). */
static int put_extensions(writer *w, const hello_opts *o, const char **failed) {
  size_t all = open_len(w, 2), ext, list;
  int i;
  if (o->grease) {
    put_u16(w, GREASE_EXT_FIRST);
    put_u16(w, 0);
  }
  if (o->reneg_info) {
    put_u16(w, 0xFF01);
    put_u16(w, 1);
    put_u8(w, 0);
  }
  if (o->sni) {
    put_u16(w, 0);
    ext = open_len(w, 2);
    list = open_len(w, 2);
    put_u8(w, 0);  /* host_name */
    put_u16(w, (unsigned)o->sni_len);
    put_bytes(w, o->sni, o->sni_len);
    close_len(w, list, 2);
    close_len(w, ext, 2);
  }
  if (o->npoint_formats > 0) {
    put_u16(w, 11);
    ext = open_len(w, 2);
    list = open_len(w, 1);
    put_bytes(w, o->point_formats, (size_t)o->npoint_formats);
    close_len(w, list, 1);
    close_len(w, ext, 2);
  }
  if (o->ngroups > 0) put_ext_list16(w, 10, o->groups, o->ngroups, o->grease ? GREASE_GROUP : 0);
  if (o->session_ticket) {
    put_u16(w, 35);
    put_u16(w, (unsigned)o->ticket_len);
    if (o->ticket_len > 0) put_bytes(w, o->ticket, o->ticket_len);
  }
  if (o->nalpn > 0) {
    put_u16(w, 16);
    ext = open_len(w, 2);
    list = open_len(w, 2);
    for (i = 0; i < o->nalpn; i++) {
      put_u8(w, (unsigned)o->alpn_len[i]);
      put_bytes(w, o->alpn[i], o->alpn_len[i]);
    }
    close_len(w, list, 2);
    close_len(w, ext, 2);
  }
  if (o->ems) {
    put_u16(w, 23);
    put_u16(w, 0);
  }
  if (o->nsigalgs > 0) put_ext_list16(w, 13, o->sigalgs, o->nsigalgs, o->grease ? GREASE_SIGALG : 0);
  if (o->nversions > 0) {
    put_u16(w, 43);
    ext = open_len(w, 2);
    list = open_len(w, 1);
    if (o->grease) put_u16(w, GREASE_VERSION);
    for (i = 0; i < o->nversions; i++) put_u16(w, o->versions[i]);
    close_len(w, list, 1);
    close_len(w, ext, 2);
  }
  {
    int tls13 = 0;
    for (i = 0; i < o->nversions; i++) tls13 |= o->versions[i] == 0x0304;
    if (tls13 || o->nkey_shares > 0) {
      put_u16(w, 51);
      ext = open_len(w, 2);
      list = open_len(w, 2);
      if (o->grease) {  /* RFC 8701: a GREASE key share holds one zero byte */
        put_u16(w, GREASE_GROUP);
        put_u16(w, 1);
        put_u8(w, 0);
      }
      for (i = 0; i < o->nkey_shares; i++) {
        const th_group *g = th_group_find(o->key_shares[i]);
        if (!put_key_share(w, g)) {
          *failed = g->name;
          return 0;
        }
      }
      close_len(w, list, 2);
      close_len(w, ext, 2);
    }
  }
  if (o->heartbeat) {
    put_u16(w, 15);
    put_u16(w, 1);
    put_u8(w, 1);  /* peer_allowed_to_send */
  }
  if (o->grease) {
    put_u16(w, GREASE_EXT_LAST);
    put_u16(w, 1);
    put_u8(w, 0);
  }
  if (w->len == all + 2) w->len = all;  /* nothing to send: no block at all */
  else close_len(w, all, 2);
  return 1;
}

static int write_tls(writer *w, const hello_opts *o, const char **failed) {
  unsigned char rnd[32], sid[32];
  size_t record, hs, list;
  int i;
  int legacy = o->version >= TH_V_TLS12 ? 0x0303 : th_versions[o->version].wire;
  if (o->random) memcpy(rnd, o->random, 32);
  else if (!random_bytes(rnd, 32)) { *failed = "random"; return 0; }
  if (o->session_id) memcpy(sid, o->session_id, o->session_id_len);
  else if (o->session_id_len > 0 && !random_bytes(sid, o->session_id_len)) {
    *failed = "random";
    return 0;
  }
  put_u8(w, 22);
  put_u16(w, (unsigned)o->record_version);
  record = open_len(w, 2);
  put_u8(w, 1);
  hs = open_len(w, 3);
  put_u16(w, (unsigned)legacy);
  put_bytes(w, rnd, 32);
  put_u8(w, (unsigned)o->session_id_len);
  put_bytes(w, sid, o->session_id_len);
  list = open_len(w, 2);
  if (o->grease) put_u16(w, GREASE_SUITE);
  for (i = 0; i < o->nsuites; i++) put_u16(w, o->suites[i]);
  if (o->reneg_scsv) put_u16(w, 0x00FF);
  if (o->fallback_scsv) put_u16(w, 0x5600);
  close_len(w, list, 2);
  put_u8(w, (unsigned)o->ncompression);
  put_bytes(w, o->compression, (size_t)o->ncompression);
  if (o->extensions && !put_extensions(w, o, failed)) return 0;
  close_len(w, hs, 3);
  close_len(w, record, 2);
  if (!w->overflow && w->len - 5 > RECORD_MAX) w->overflow = 1;
  return 1;
}

static int write_sslv2(writer *w, const hello_opts *o, const char **failed) {
  unsigned char challenge[32], sid[16];
  size_t challenge_len = o->random ? o->random_len : 16;
  size_t body = 9 + 3 * (size_t)o->nsuites + o->session_id_len + challenge_len;
  int i;
  if (o->random) memcpy(challenge, o->random, challenge_len);
  else if (!random_bytes(challenge, challenge_len)) { *failed = "random"; return 0; }
  if (o->session_id) memcpy(sid, o->session_id, o->session_id_len);
  if (body > SSLV2_RECORD_MAX) {
    w->overflow = 1;
    return 1;
  }
  put_u8(w, 0x80 | (unsigned)(body >> 8));
  put_u8(w, (unsigned)body & 0xFF);
  put_u8(w, 1);           /* MSG-CLIENT-HELLO */
  put_u16(w, 0x0002);     /* SSL 2.0 */
  put_u16(w, 3 * (unsigned)o->nsuites);
  put_u16(w, (unsigned)o->session_id_len);
  put_u16(w, (unsigned)challenge_len);
  for (i = 0; i < o->nsuites; i++) {
    put_u8(w, (o->suites[i] >> 16) & 0xFF);
    put_u16(w, o->suites[i] & 0xFFFF);
  }
  put_bytes(w, sid, o->session_id_len);
  put_bytes(w, challenge, challenge_len);
  return 1;
}

/* tlsharden.wire.client_hello([opts]): the bytes of one ClientHello record. */
int th_client_hello(lua_State *L) {
  hello_opts *o;
  writer w;
  const char *failed = NULL;
  int ok;
  lua_settop(L, 1);
  /* Scratch space owned by Lua: nothing leaks when an option raises. */
  o = (hello_opts *)lua_newuserdata(L, sizeof *o + SSLV2_RECORD_MAX + 2);
  th_hello_options(L, 1, o);
  w.buf = (unsigned char *)(o + 1);
  w.cap = SSLV2_RECORD_MAX + 2;
  w.len = 0;
  w.overflow = 0;
  ERR_clear_error();
  ok = o->version == TH_V_SSL2 ? write_sslv2(&w, o, &failed) : write_tls(&w, o, &failed);
  if (!ok) {
    th_push_ssl_errors(L, "no detail from OpenSSL");
    if (strcmp(failed, "random") == 0)
      return th_raise(L, "failed", FN, "cannot get random bytes: %s", lua_tostring(L, -1));
    return th_error(L, FN, "bad option 'key_shares': cannot make a key for %s: %s", failed,
                    lua_tostring(L, -1));
  }
  if (w.overflow)
    return th_error(L, FN, "the hello does not fit in one record (%d bytes): offer fewer"
                    " suites, groups or key shares", o->version == TH_V_SSL2 ?
                    SSLV2_RECORD_MAX : RECORD_MAX);
  lua_pushlstring(L, (const char *)w.buf, w.len);
  return 1;
}
