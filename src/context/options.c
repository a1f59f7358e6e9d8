/* The OpenSSL option names LuaSec 1.x accepts in `options`: SSL_OP_* lower
 * cased without the prefix. Some are 0 on OpenSSL 3 (kept for old configs);
 * a few are masks of several bits. The last column says whether switching
 * the option off (TH_OPT_PROTECTS) or on (TH_OPT_RISKY) lowers security. */
#include <string.h>

#include "core/tlsharden.h"

#define OPT(name, flag, risk) {name, (uint64_t)(flag), 0, risk}
#define MASK(name, flag, risk) {name, (uint64_t)(flag), 1, risk}

const th_option th_options[] = {
  MASK("all", SSL_OP_ALL, TH_OPT_RISKY),
  OPT("allow_client_renegotiation", SSL_OP_ALLOW_CLIENT_RENEGOTIATION, TH_OPT_RISKY),
  OPT("allow_no_dhe_kex", SSL_OP_ALLOW_NO_DHE_KEX, 0),
  OPT("allow_unsafe_legacy_renegotiation", SSL_OP_ALLOW_UNSAFE_LEGACY_RENEGOTIATION, TH_OPT_RISKY),
  OPT("cipher_server_preference", SSL_OP_CIPHER_SERVER_PREFERENCE, 0),
  OPT("cisco_anyconnect", SSL_OP_CISCO_ANYCONNECT, 0),
  OPT("cleanse_plaintext", SSL_OP_CLEANSE_PLAINTEXT, 0),
  OPT("cookie_exchange", SSL_OP_COOKIE_EXCHANGE, 0),
  OPT("cryptopro_tlsext_bug", SSL_OP_CRYPTOPRO_TLSEXT_BUG, 0),
  OPT("disable_tlsext_ca_names", SSL_OP_DISABLE_TLSEXT_CA_NAMES, 0),
  OPT("dont_insert_empty_fragments", SSL_OP_DONT_INSERT_EMPTY_FRAGMENTS, TH_OPT_RISKY),
  OPT("enable_ktls", SSL_OP_ENABLE_KTLS, 0),
  OPT("enable_middlebox_compat", SSL_OP_ENABLE_MIDDLEBOX_COMPAT, 0),
  OPT("ephemeral_rsa", SSL_OP_EPHEMERAL_RSA, 0),
  OPT("ignore_unexpected_eof", SSL_OP_IGNORE_UNEXPECTED_EOF, 0),
  OPT("legacy_server_connect", SSL_OP_LEGACY_SERVER_CONNECT, TH_OPT_RISKY),
  OPT("microsoft_big_sslv3_buffer", SSL_OP_MICROSOFT_BIG_SSLV3_BUFFER, 0),
  OPT("microsoft_sess_id_bug", SSL_OP_MICROSOFT_SESS_ID_BUG, 0),
  OPT("msie_sslv2_rsa_padding", SSL_OP_MSIE_SSLV2_RSA_PADDING, 0),
  OPT("netscape_ca_dn_bug", SSL_OP_NETSCAPE_CA_DN_BUG, 0),
  OPT("netscape_challenge_bug", SSL_OP_NETSCAPE_CHALLENGE_BUG, 0),
  OPT("netscape_demo_cipher_change_bug", SSL_OP_NETSCAPE_DEMO_CIPHER_CHANGE_BUG, 0),
  OPT("netscape_reuse_cipher_change_bug", SSL_OP_NETSCAPE_REUSE_CIPHER_CHANGE_BUG, 0),
  OPT("no_anti_replay", SSL_OP_NO_ANTI_REPLAY, 0),
  OPT("no_compression", SSL_OP_NO_COMPRESSION, TH_OPT_PROTECTS),
  MASK("no_dtls_mask", SSL_OP_NO_DTLS_MASK, 0),
  OPT("no_dtlsv1", SSL_OP_NO_DTLSv1, 0),
  OPT("no_dtlsv1_2", SSL_OP_NO_DTLSv1_2, 0),
  OPT("no_encrypt_then_mac", SSL_OP_NO_ENCRYPT_THEN_MAC, TH_OPT_RISKY),
  OPT("no_extended_master_secret", SSL_OP_NO_EXTENDED_MASTER_SECRET, TH_OPT_RISKY),
  OPT("no_query_mtu", SSL_OP_NO_QUERY_MTU, 0),
  OPT("no_renegotiation", SSL_OP_NO_RENEGOTIATION, TH_OPT_PROTECTS),
  OPT("no_session_resumption_on_renegotiation", SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION, 0),
  MASK("no_ssl_mask", SSL_OP_NO_SSL_MASK, 0),
  OPT("no_sslv2", SSL_OP_NO_SSLv2, TH_OPT_PROTECTS),
  OPT("no_sslv3", SSL_OP_NO_SSLv3, TH_OPT_PROTECTS),
  OPT("no_ticket", SSL_OP_NO_TICKET, 0),
  OPT("no_tlsv1", SSL_OP_NO_TLSv1, TH_OPT_PROTECTS),
  OPT("no_tlsv1_1", SSL_OP_NO_TLSv1_1, TH_OPT_PROTECTS),
  OPT("no_tlsv1_2", SSL_OP_NO_TLSv1_2, TH_OPT_RISKY),
  OPT("no_tlsv1_3", SSL_OP_NO_TLSv1_3, TH_OPT_RISKY),
  OPT("pkcs1_check_1", SSL_OP_PKCS1_CHECK_1, 0),
  OPT("pkcs1_check_2", SSL_OP_PKCS1_CHECK_2, 0),
  OPT("prioritize_chacha", SSL_OP_PRIORITIZE_CHACHA, 0),
  OPT("safari_ecdhe_ecdsa_bug", SSL_OP_SAFARI_ECDHE_ECDSA_BUG, 0),
  OPT("single_dh_use", SSL_OP_SINGLE_DH_USE, 0),
  OPT("single_ecdh_use", SSL_OP_SINGLE_ECDH_USE, 0),
  OPT("ssleay_080_client_dh_bug", SSL_OP_SSLEAY_080_CLIENT_DH_BUG, 0),
  OPT("sslref2_reuse_cert_type_bug", SSL_OP_SSLREF2_REUSE_CERT_TYPE_BUG, 0),
  OPT("tls_block_padding_bug", SSL_OP_TLS_BLOCK_PADDING_BUG, 0),
  OPT("tls_d5_bug", SSL_OP_TLS_D5_BUG, 0),
  OPT("tls_rollback_bug", SSL_OP_TLS_ROLLBACK_BUG, 0),
  OPT("tlsext_padding", SSL_OP_TLSEXT_PADDING, 0),
  {NULL, 0, 0, 0}
};

/* TH_NOPTIONS must count the names above: merge.c sizes its sets by it. */
typedef char th_options_count_check[
  sizeof th_options / sizeof th_options[0] == TH_NOPTIONS + 1 ? 1 : -1];

/* th_options is sorted by name (spec/options_spec.lua checks it). */
int th_option_index(const char *name) {
  int lo = 0, hi = TH_NOPTIONS;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    int c = strcmp(name, th_options[mid].name);
    if (c == 0) return mid;
    if (c < 0) hi = mid; else lo = mid + 1;
  }
  return -1;
}

static int option_shown(const th_option *o, uint64_t set) {
  return !o->mask && o->flag != 0 && (set & o->flag) == o->flag;
}

void th_push_option_names(lua_State *L, uint64_t set) {
  const th_option *o;
  int n = 0;
  for (o = th_options; o->name; o++) n += option_shown(o, set);
  lua_createtable(L, n, 0);
  n = 0;
  for (o = th_options; o->name; o++) {
    if (!option_shown(o, set)) continue;
    lua_pushstring(L, o->name);
    lua_rawseti(L, -2, ++n);
  }
}

/* tlsharden.context.option_names(): every option name accepted, sorted. */
int th_option_names(lua_State *L) {
  const th_option *o;
  int n = 0;
  lua_createtable(L, TH_NOPTIONS, 0);
  for (o = th_options; o->name; o++) {
    lua_pushstring(L, o->name);
    lua_rawseti(L, -2, ++n);
  }
  return 1;
}
