/* What the two halves of the ClientHello writer share: hello_opts.c reads
 * and completes the options, hello.c writes the bytes. Internal to those
 * two files. */
#ifndef TLSHARDEN_HELLO_H
#define TLSHARDEN_HELLO_H

#include <stdint.h>

#include "core/tlsharden.h"

#define FN "wire.client_hello"
#define RECORD_MAX 16384         /* a TLS record's payload, RFC 5246 6.2.1 */
#define SSLV2_RECORD_MAX 32767   /* a 2-byte SSLv2 header's length */
#define MAX_SUITES 10922         /* what one SSLv2 record can carry */
#define MAX_LIST 128             /* groups, signature schemes */
#define MAX_SMALL 16             /* versions, key shares, ALPN, compression */
#define MAX_TICKET 8192          /* bytes of a session ticket to resume with */

typedef struct hello_opts {
  int version;          /* TH_V_* of client_version (tlsv1_3: legacy 1.2 + extension) */
  int record_version;   /* wire; -1 default */
  int nsuites;          /* -1 default */
  uint32_t suites[MAX_SUITES];
  int reneg_scsv, fallback_scsv;  /* -1 default */
  int ncompression;
  unsigned char compression[MAX_SMALL];
  const char *sni;
  size_t sni_len;
  int ngroups;
  uint16_t groups[MAX_LIST];
  int npoint_formats;
  unsigned char point_formats[MAX_SMALL];
  int nsigalgs;
  uint16_t sigalgs[MAX_LIST];
  int nversions;
  uint16_t versions[MAX_SMALL];
  int nkey_shares;
  uint16_t key_shares[MAX_SMALL];
  int session_ticket, reneg_info, ems, extensions;  /* -1 default */
  const char *ticket;   /* a ticket to resume with in session_ticket, or NULL */
  size_t ticket_len;
  int heartbeat;        /* offer RFC 6520's extension (peer_allowed_to_send) */
  int grease;           /* RFC 8701 values in suites, extensions, groups, sigalgs, versions */
  int nalpn;
  const char *alpn[MAX_SMALL];
  size_t alpn_len[MAX_SMALL];
  const char *random;
  size_t random_len;
  const char *session_id;
  size_t session_id_len;
  int any_extension_option;   /* an extension was asked for explicitly */
} hello_opts;

/* Read the options at stack index opts (nil for none) into o and fill in
 * the defaults; raises for bad or contradicting options. */
void th_hello_options(lua_State *L, int opts, hello_opts *o);

#endif
