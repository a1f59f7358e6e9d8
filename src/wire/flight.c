/* Server first-flight parser for a scanner: the bytes a server sends back
 * after a ClientHello, up to ServerHelloDone (TLS 1.2 and older), the
 * ServerHello or HelloRetryRequest (TLS 1.3, the rest is encrypted), an
 * alert, or an SSLv2 SERVER-HELLO or ERROR. Pure: bytes in, Lua table out.
 * Whatever a broken or hostile peer sends (garbage, an HTTP or XMPP reply,
 * a record length past the limit, a truncated flight) becomes a problem in
 * the result, never an error. Handshake messages may span records and a
 * record may hold several messages. The messages themselves are read in
 * flight_messages.c; problems go through flight_result.c. */
#include <stdio.h>
#include <string.h>

#include "wire/flight.h"

#define FN "wire.parse_server_flight"
#define RECORD_LIMIT (16384 + 2048)  /* RFC 5246 6.2.3: a record's largest payload */

static const th_named sslv2_errors[] = {
  {1, "no_cipher"}, {2, "no_certificate"}, {4, "bad_certificate"},
  {6, "unsupported_certificate_type"}, {0, NULL}
};

/* ---- framing ---- */

static const char *guess_protocol(const unsigned char *p, size_t n) {
  static const struct { const char *prefix; const char *guess; } known[] = {
    {"HTTP/", "http"}, {"<?xml", "xmpp"}, {"<stream", "xmpp"}, {"SSH-", "ssh"},
    {"220", "smtp or ftp"}, {"* OK", "imap"}, {"+OK", "pop3"}, {NULL, NULL}
  };
  int i;
  for (i = 0; known[i].prefix; i++) {
    size_t k = strlen(known[i].prefix);
    if (n >= k && memcmp(p, known[i].prefix, k) == 0) return known[i].guess;
  }
  return NULL;
}

static void not_tls(flight *f, const unsigned char *p, size_t n) {
  lua_State *L = f->L;
  const char *guess = guess_protocol(p, n), *preview;
  th_quote_lstring(L, (const char *)p, n);
  preview = lua_tostring(L, -1);
  if (guess)
    th_flight_problem_open(f, "NOT_TLS", "the answer is not TLS (it looks like %s): %s", guess,
                           preview);
  else
    th_flight_problem_open(f, "NOT_TLS", "the answer is not TLS: %s", preview);
  th_set_string(L, "guess", guess);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "preview");
  lua_pop(L, 2);
  f->not_tls = 1;
  f->done = 1;
}

static void parse_sslv2(flight *f, const unsigned char *p, size_t n) {
  lua_State *L = f->L;
  size_t rlen;
  th_reader r;
  unsigned type;
  if (n < 3) {
    f->need = 3 - n;
    return;
  }
  rlen = ((size_t)(p[0] & 0x7F) << 8) | p[1];
  if (p[2] != 0 && p[2] != 4) {
    not_tls(f, p, n);
    return;
  }
  if (n < 2 + rlen) {
    f->need = 2 + rlen - n;
    return;
  }
  f->records = 1;
  f->sslv2 = 1;
  f->done = 1;
  th_reader_init(&r, p + 2, rlen);
  type = th_read_u8(&r);
  if (type == 0) {
    unsigned code = th_read_u16(&r);
    lua_createtable(L, 0, 2);
    th_set_int(L, "code", code);
    th_set_string(L, "name", th_flight_lookup(sslv2_errors, code));
    lua_setfield(L, f->result, "sslv2_error");
    if (r.bad) th_flight_problem(f, "MALFORMED", "sslv2: an ERROR message of %d bytes", (int)rlen);
    return;
  } else {
    unsigned hit = th_read_u8(&r), cert_type = th_read_u8(&r), version = th_read_u16(&r);
    size_t cert_len = th_read_u16(&r), specs_len = th_read_u16(&r), conn_len = th_read_u16(&r), i;
    const unsigned char *cert = th_read_take(&r, cert_len), *specs = th_read_take(&r, specs_len);
    th_read_take(&r, conn_len);
    if (r.bad || specs_len % 3 != 0) {
      th_flight_problem(f, "MALFORMED", "sslv2: a SERVER-HELLO whose lengths do not add up");
      return;
    }
    lua_createtable(L, 0, 7);
    th_set_int(L, "version", version);
    th_set_string(L, "protocol", th_flight_version_name(version));
    th_set_bool(L, "session_id_hit", hit != 0);
    th_set_int(L, "certificate_type", cert_type);
    if (cert_len > 0) th_set_bytes(L, "certificate", cert, cert_len);
    th_set_int(L, "connection_id_length", (lua_Integer)conn_len);
    lua_createtable(L, (int)(specs_len / 3), 0);
    for (i = 0; i < specs_len / 3; i++) {
      lua_pushinteger(L, ((lua_Integer)specs[3 * i] << 16) | (specs[3 * i + 1] << 8) |
                         specs[3 * i + 2]);
      lua_rawseti(L, -2, (int)i + 1);
    }
    lua_setfield(L, -2, "cipher_kinds");
    lua_setfield(L, f->result, "sslv2");
  }
}

/* Records from p[0..n): handshake payloads are gathered in hs so that
 * messages may span records. Returns the bytes consumed. */
static size_t parse_records(flight *f, const unsigned char *p, size_t n, unsigned char *hs) {
  size_t off = 0, hs_len = 0, hs_pos = 0;
  while (!f->done) {
    size_t avail = n - off, rlen;
    unsigned type, version;
    const unsigned char *payload;
    if (avail < 5) {
      f->need = 5 - avail;
      break;
    }
    type = p[off];
    version = ((unsigned)p[off + 1] << 8) | p[off + 2];
    rlen = ((size_t)p[off + 3] << 8) | p[off + 4];
    if (type < 20 || type > 24 || (version >> 8) != 3) {
      if (f->records == 0) not_tls(f, p, n);
      else {
        char hex[8];
        snprintf(hex, sizeof hex, "0x%04X", version);
        th_flight_problem(f, "MALFORMED", "record #%d: type %d, version %s is not a TLS record",
                          f->records + 1, (int)type, hex);
        f->done = 1;
      }
      break;
    }
    if (rlen > RECORD_LIMIT) {
      th_flight_problem(f, "RECORD_TOO_LONG", "record #%d claims %d bytes (at most %d)",
                        f->records + 1, (int)rlen, RECORD_LIMIT);
      f->done = 1;
      break;
    }
    if (avail - 5 < rlen) {
      f->need = rlen - (avail - 5);
      break;
    }
    if (f->records == 0) {
      lua_pushinteger(f->L, version);
      lua_setfield(f->L, f->result, "record_version");
    }
    payload = p + off + 5;
    off += 5 + rlen;
    f->records++;
    if (rlen == 0) {
      th_flight_problem(f, "MALFORMED", "record #%d is empty", f->records);
      continue;
    }
    if (type == 22) {
      memcpy(hs + hs_len, payload, rlen);
      hs_len += rlen;
      while (!f->done && hs_len - hs_pos >= 4) {
        size_t mlen = ((size_t)hs[hs_pos + 1] << 16) | ((size_t)hs[hs_pos + 2] << 8) |
                      hs[hs_pos + 3];
        unsigned mtype = hs[hs_pos];
        if (hs_len - hs_pos - 4 < mlen) break;
        hs_pos += 4 + mlen;
        th_flight_message(f, mtype, hs + hs_pos - mlen, mlen);
      }
    } else if (type == 21) {
      th_flight_alert(f, payload, rlen);
    } else if (type == 20 && f->seen_sh) {
      f->done = 1;  /* an abbreviated (resumed) handshake goes on encrypted */
    } else {
      th_flight_problem(f, "UNEXPECTED_RECORD", "record #%d: %s before the handshake finished",
                        f->records, type == 20 ? "change_cipher_spec" : type == 23 ?
                        "application data" : "a heartbeat");
      if (type == 23) f->done = 1;
    }
  }
  if (!f->done && f->need == 0) f->need = 5;
  if (!f->done && hs_len > hs_pos) {
    /* a handshake message continues in records still to come */
    size_t have = hs_len - hs_pos, mlen;
    if (have >= 4) {
      mlen = ((size_t)hs[hs_pos + 1] << 16) | ((size_t)hs[hs_pos + 2] << 8) | hs[hs_pos + 3];
      if (off == n) f->need = 5 + (4 + mlen - have);
    }
  }
  return off;
}

static const char *outcome(const flight *f, lua_State *L) {
  if (f->seen_sh) return f->hrr ? "hello_retry_request" : "server_hello";
  if (f->fatal_alert) return "alert";
  if (f->sslv2) {
    lua_getfield(L, f->result, "sslv2");
    if (!lua_isnil(L, -1)) {
      lua_pop(L, 1);
      return "sslv2_server_hello";
    }
    lua_pop(L, 1);
    lua_getfield(L, f->result, "sslv2_error");
    if (!lua_isnil(L, -1)) {
      lua_pop(L, 1);
      return "sslv2_error";
    }
    lua_pop(L, 1);
    return "malformed";
  }
  if (f->not_tls) return "not_tls";
  if (f->closed) return f->closed == 1 ? "closed" : "truncated";
  if (f->done) return "malformed";
  return "incomplete";
}

/* tlsharden.wire.parse_server_flight(bytes [, opts]) */
int th_parse_server_flight(lua_State *L) {
  static const char *const known[] = {"eof", NULL};
  th_opts o;
  size_t n, consumed = 0;
  const unsigned char *p;
  int eof = 0;
  flight f;
  unsigned char *hs;
  if (lua_type(L, 1) != LUA_TSTRING)
    return th_arg_error(L, FN, 1, "bytes", "expected a string, got %s", th_quote(L, 1));
  th_opts_open(L, &o, 2, FN, "opts", "option", known);
  eof = th_opt_bool(&o, "eof", 0);
  p = (const unsigned char *)lua_tolstring(L, 1, &n);
  lua_settop(L, 1);
  hs = (unsigned char *)lua_newuserdata(L, n > 0 ? n : 1);  /* scratch, owned by Lua */
  memset(&f, 0, sizeof f);
  f.L = L;
  lua_createtable(L, 0, 16);
  f.result = lua_gettop(L);
  lua_newtable(L);
  f.problems = lua_gettop(L);
  lua_newtable(L);
  f.messages = lua_gettop(L);
  lua_newtable(L);
  f.alerts = lua_gettop(L);
  if (n == 0) {
    f.need = 5;
  } else if (p[0] & 0x80) {
    parse_sslv2(&f, p, n);
    if (f.done) consumed = n < 2 ? n : 2 + (((size_t)(p[0] & 0x7F) << 8) | p[1]);
  } else if (n >= 2 && p[0] >= 20 && p[0] <= 24 && p[1] != 3) {
    not_tls(&f, p, n);
  } else if (p[0] < 20 || p[0] > 24) {
    not_tls(&f, p, n);
  } else {
    consumed = parse_records(&f, p, n, hs);
  }
  if (f.not_tls) consumed = n;
  if (consumed > n) consumed = n;
  if (!f.done && eof) {
    if (n == 0) th_flight_problem(&f, "NO_DATA", "the peer closed without sending anything");
    else th_flight_problem(&f, "TRUNCATED", "the peer closed after %d bytes, %d short of the"
                           " next step", (int)n, (int)f.need);
    f.closed = n == 0 ? 1 : 2;
    f.done = 1;
  }
  lua_pushvalue(L, f.problems);
  lua_setfield(L, f.result, "problems");
  lua_pushvalue(L, f.messages);
  lua_setfield(L, f.result, "messages");
  lua_pushvalue(L, f.alerts);
  lua_setfield(L, f.result, "alerts");
  lua_pushvalue(L, f.result);
  th_set_bool(L, "done", f.done);
  if (!f.done) th_set_int(L, "need", (lua_Integer)f.need);
  th_set_int(L, "consumed", (lua_Integer)consumed);
  th_set_int(L, "records", f.records);
  th_set_string(L, "outcome", outcome(&f, L));
  return 1;
}
