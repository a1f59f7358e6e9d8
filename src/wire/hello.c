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
#include "wire/reader.h"

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

/* ---- replaying a recorded ClientHello ---- */

#define RFN "wire.replay_hello"
#define REPLAY_IN_MAX (4 * (RECORD_MAX + 5))  /* the records of a recorded first flight, at most */

typedef struct replay_opts {
  int sni;                 /* 0 keep, 1 replace, -1 drop */
  const char *sni_name;
  size_t sni_len;
  const th_group *share;   /* replace the key shares with one for this group */
  const char *cookie;
  size_t cookie_len;
} replay_opts;

static void read_replay_opts(lua_State *L, replay_opts *ro) {
  static const char *const known[] = { "server_name", "key_share", "cookie", NULL };
  th_opts opts;
  int t;
  memset(ro, 0, sizeof *ro);
  th_opts_open(L, &opts, 2, RFN, "opts", "option", known);
  if (!opts.idx) return;
  t = th_opt_get(&opts, "server_name");
  if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) ro->sni = -1;
  else if (t == LUA_TSTRING) {
    size_t i;
    ro->sni_name = lua_tolstring(L, -1, &ro->sni_len);
    if (ro->sni_len < 1 || ro->sni_len > 255)
      th_opt_error(&opts, "server_name", "expected 1 to 255 bytes, got %d", (int)ro->sni_len);
    for (i = 0; i < ro->sni_len; i++)
      if ((unsigned char)ro->sni_name[i] <= 0x20 || (unsigned char)ro->sni_name[i] >= 0x7F)
        th_opt_error(&opts, "server_name", "expected a host name (printable ASCII without spaces), got %s",
                     th_quote(L, -1));
    ro->sni = 1;
  } else if (t != LUA_TNIL)
    th_opt_error(&opts, "server_name", "expected a host name or false, got %s", th_quote(L, -1));
  lua_pop(L, 1);
  t = th_opt_get(&opts, "key_share");
  if (t == LUA_TNUMBER && lua_isinteger(L, -1)) ro->share = th_group_find((unsigned)lua_tointeger(L, -1));
  else if (t == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    ro->share = th_group_named(s, len);
  }
  if (t != LUA_TNIL && (!ro->share || !ro->share->alg))
    th_opt_error(&opts, "key_share", "expected a group OpenSSL can make a key for (see tlsharden.wire.groups()),"
                 " got %s", th_quote(L, -1));
  lua_pop(L, 1);
  t = th_opt_get(&opts, "cookie");
  if (t == LUA_TSTRING) {
    ro->cookie = lua_tolstring(L, -1, &ro->cookie_len);
    if (ro->cookie_len < 1 || ro->cookie_len > 4096)
      th_opt_error(&opts, "cookie", "expected 1 to 4096 bytes, got %d", (int)ro->cookie_len);
  } else if (t != LUA_TNIL)
    th_opt_error(&opts, "cookie", "expected the bytes of a cookie, got %s", th_quote(L, -1));
  lua_pop(L, 1);  /* the strings stay alive in the options table */
}

/* The ClientHello message of a recorded first flight (records of type 22
 * that carry one handshake message) into msg; returns its length, or 0
 * with *why set. *recver: the first record's version. */
static size_t gather_hello(const unsigned char *in, size_t n, unsigned char *msg, unsigned *recver,
                           const char **why) {
  th_reader r;
  size_t have = 0, need = 0;
  th_reader_init(&r, in, n);
  while (th_reader_left(&r) > 0) {
    unsigned type = th_read_u8(&r), version = th_read_u16(&r);
    size_t len;
    const unsigned char *p = th_read_vec(&r, 2, &len);
    if (r.bad) { *why = "the records are cut short"; return 0; }
    if (type != 22) { *why = "a record that is no handshake record"; return 0; }
    if (len > RECORD_MAX + 2048) { *why = "a record longer than TLS allows"; return 0; }
    if (have == 0) *recver = version;
    if (have + len > REPLAY_IN_MAX) { *why = "the hello is too long"; return 0; }
    memcpy(msg + have, p, len);
    have += len;
    if (have >= 4 && need == 0) {
      if (msg[0] != 1) { *why = "the first handshake message is no ClientHello"; return 0; }
      need = 4 + (((size_t)msg[1] << 16) | ((size_t)msg[2] << 8) | msg[3]);
    }
    if (need > 0 && have >= need) return need;
  }
  *why = have == 0 ? "no records" : "the ClientHello is cut short";
  return 0;
}

static void put_sni(writer *w, const replay_opts *ro) {
  size_t ext, list;
  put_u16(w, 0);
  ext = open_len(w, 2);
  list = open_len(w, 2);
  put_u8(w, 0);
  put_u16(w, (unsigned)ro->sni_len);
  put_bytes(w, ro->sni_name, ro->sni_len);
  close_len(w, list, 2);
  close_len(w, ext, 2);
}

static void put_cookie(writer *w, const replay_opts *ro) {
  size_t ext = 0, c;
  put_u16(w, 44);
  ext = open_len(w, 2);
  c = open_len(w, 2);
  put_bytes(w, ro->cookie, ro->cookie_len);
  close_len(w, c, 2);
  close_len(w, ext, 2);
}

/* Write the hello again: extensions as recorded, but for the SNI, the key
 * shares and the cookie the options change; a pre_shared_key stays last.
 * Returns 0 with *why set (or *failed for a key that cannot be made). */
static int write_replay(writer *w, const unsigned char *msg, size_t n, unsigned recver, const replay_opts *ro,
                        const char **why, const char **failed) {
  th_reader r;
  size_t record, hs, len, exts_len = 0, all, i;
  const unsigned char *head, *exts = NULL, *psk = NULL;
  size_t psk_len = 0;
  int cookie_done = 0;
  th_reader_init(&r, msg + 4, n - 4);
  th_read_take(&r, 2 + 32);
  th_read_vec(&r, 1, &len);   /* session id */
  th_read_vec(&r, 2, &len);   /* suites */
  th_read_vec(&r, 1, &len);   /* compression */
  head = msg + 4;
  i = r.off;                  /* the bytes up to the extensions */
  if (th_reader_left(&r) > 0) exts = th_read_vec(&r, 2, &exts_len);
  if (r.bad || th_reader_left(&r) != 0) { *why = "the ClientHello's lengths do not add up"; return 0; }
  put_u8(w, 22);
  put_u16(w, recver);
  record = open_len(w, 2);
  put_u8(w, 1);
  hs = open_len(w, 3);
  put_bytes(w, head, i);
  if (exts) {
    th_reader e;
    all = open_len(w, 2);
    th_reader_init(&e, exts, exts_len);
    while (th_reader_left(&e) > 0) {
      unsigned type = th_read_u16(&e);
      size_t dlen;
      const unsigned char *data = th_read_vec(&e, 2, &dlen);
      if (e.bad) { *why = "an extension is cut short"; return 0; }
      if (type == 0 && ro->sni == -1) continue;
      if (type == 0 && ro->sni == 1) { put_sni(w, ro); continue; }
      if (type == 51 && ro->share) {
        size_t ext, list;
        put_u16(w, 51);
        ext = open_len(w, 2);
        list = open_len(w, 2);
        if (!put_key_share(w, ro->share)) { *failed = ro->share->name; return 0; }
        close_len(w, list, 2);
        close_len(w, ext, 2);
        continue;
      }
      if (type == 44 && ro->cookie) { put_cookie(w, ro); cookie_done = 1; continue; }
      if (type == 41) { psk = data; psk_len = dlen; continue; }
      put_u16(w, type);
      put_u16(w, (unsigned)dlen);
      put_bytes(w, data, dlen);
    }
    if (ro->cookie && !cookie_done) put_cookie(w, ro);
    if (psk) {
      put_u16(w, 41);
      put_u16(w, (unsigned)psk_len);
      put_bytes(w, psk, psk_len);
    }
    close_len(w, all, 2);
  } else if (ro->cookie || ro->share || ro->sni == 1) {
    *why = "the ClientHello has no extensions to change";
    return 0;
  }
  close_len(w, hs, 3);
  close_len(w, record, 2);
  if (!w->overflow && w->len - 5 > RECORD_MAX) w->overflow = 1;
  return 1;
}

/* tlsharden.wire.replay_hello(bytes [, opts]): a recorded ClientHello (its
 * records) as one record again, with another SNI (server_name, or false
 * for none), a fresh key share for one group (key_share, after a
 * HelloRetryRequest) and a cookie (cookie). Returns nil and why for bytes
 * that are no ClientHello. */
int th_replay_hello(lua_State *L) {
  replay_opts ro;
  const unsigned char *in;
  unsigned char *msg;
  size_t n, mlen;
  unsigned recver = 0x0301;
  const char *why = NULL, *failed = NULL;
  writer w;
  if (lua_type(L, 1) != LUA_TSTRING)
    return th_arg_error(L, RFN, 1, "bytes", "expected the bytes of a recorded ClientHello, got %s", th_quote(L, 1));
  read_replay_opts(L, &ro);
  in = (const unsigned char *)lua_tolstring(L, 1, &n);
  /* scratch space owned by Lua: the message read, then the record written */
  msg = (unsigned char *)lua_newuserdata(L, REPLAY_IN_MAX + RECORD_MAX + 4096);
  w.buf = msg + REPLAY_IN_MAX;
  w.cap = RECORD_MAX + 4096;
  w.len = 0;
  w.overflow = 0;
  mlen = gather_hello(in, n, msg, &recver, &why);
  ERR_clear_error();
  if (mlen == 0 || !write_replay(&w, msg, mlen, recver, &ro, &why, &failed)) {
    if (failed) {
      th_push_ssl_errors(L, "no detail from OpenSSL");
      return th_raise(L, "failed", RFN, "cannot make a key for %s: %s", failed, lua_tostring(L, -1));
    }
    lua_pushnil(L);
    lua_pushstring(L, why);
    return 2;
  }
  if (w.overflow)
    return th_error(L, RFN, "the hello does not fit in one record (%d bytes)", RECORD_MAX);
  lua_pushlstring(L, (const char *)w.buf, w.len);
  return 1;
}
