/* Internal interface shared by the C files of tlsharden.core. */
#ifndef TLSHARDEN_H
#define TLSHARDEN_H

#include <stdarg.h>
#include <stdint.h>

#include <lua.h>
#include <lauxlib.h>
#include <openssl/ssl.h>

#include "core/compat.h"

#define TH_VERSION "0.1.0"

/* Limits tlsharden holds every finding to, one owner each; core.limits
 * shows them to the Lua modules. */
#define TH_DH_MIN_BITS 2048  /* DH parameters below this lower security */

/* --- protocol versions (versions.c) -------------------------------------------
 * The one table of the versions tlsharden knows, oldest first; TH_V_*
 * index it. */
#define TH_V_SSL2 0
#define TH_V_SSL3 1
#define TH_V_TLS1 2
#define TH_V_TLS11 3
#define TH_V_TLS12 4
#define TH_V_TLS13 5
#define TH_NVERSIONS 6
typedef struct th_version {
  const char *name;      /* as LuaSec spells it: "tlsv1_2" */
  const char *label;     /* for people: "TLS 1.2" */
  const char *no_option; /* LuaSec's option that switches it off: "no_tlsv1_2" */
  int wire;              /* on the wire: 0x0002 (SSLv2), 0x0300 ... 0x0304 */
  int context;           /* 1 when an OpenSSL 3 context can use it (not SSLv2) */
} th_version;
extern const th_version th_versions[TH_NVERSIONS];
/* The index of a wire version, or -1. */
int th_version_index(int wire);
/* Push the list core.protocols: { name, label, wire } per version, oldest
 * first. */
void th_push_protocols(lua_State *L);

/* A parsed protocol specification: indices into th_versions, of versions
 * a context can use. */
typedef struct th_range {
  int lo;        /* index of the lowest enabled version */
  int hi;        /* index of the highest enabled version */
  int open_hi;   /* 1 when the spec sets no upper bound */
  int open_lo;   /* 1 when the spec sets no lower bound ("any") */
  const char *form; /* "exact", "floor", "any", "set", "range", "list" */
} th_range;

/* Parse the protocol spec at stack index idx. On failure pushes an error
 * message (without function prefix) and returns 0. */
int th_protocol_parse(lua_State *L, int idx, th_range *out);

/* The LuaSec protocol value for r, and the no_* options (at most
 * TH_NVERSIONS, stored in no_options, count in *n) that give exactly r. */
const char *th_range_luasec(const th_range *r, const char **no_options, int *n);

/* LuaSec's context modes (LSEC_MODE_SERVER, LSEC_MODE_CLIENT); 0 is a
 * context LuaSec has not given a mode. */
#define TH_MODE_INVALID 0
#define TH_MODE_SERVER 1
#define TH_MODE_CLIENT 2
/* "server", "client" or "unknown". */
const char *th_mode_name(int mode);

/* --- the error rule (args.c) ------------------------------------------------
 * Every function raises "tlsharden.<fn>: ..." and quotes a bad value with
 * th_quote: strings in single quotes, shortened to TH_QUOTE_MAX bytes (then
 * "..."), non-printable bytes as \NNN; numbers, booleans and nil as Lua
 * writes them; other values by their type ("a table"). */
#define TH_QUOTE_MAX 40

/* Every error is an object (error.c): a table { kind, fn, message, reason
 * [, argument] [, option] } with one metatable whose __tostring gives the
 * message "tlsharden.<fn>: <what><reason>". kind is "argument" (bad input),
 * "refused" (a policy refusal: less than the floor, or strict), "input" (a
 * file or text that cannot be read), "failed" (OpenSSL or the system
 * failed) or "interrupted". what (may be NULL) names what is wrong: "bad
 * argument #1 'spec': ". */
#define TH_WHAT_MAX 160
int th_vraise(lua_State *L, const char *kind, const char *fn, int argn, const char *option,
              const char *what, const char *fmt, va_list ap);
/* Raise a bad-input error of argument argn, what naming it in a form of
 * its own ("bad argument #1 'spec' 'x': "). */
int th_argument_error(lua_State *L, const char *fn, int argn, const char *what, const char *fmt, ...);
/* Raise an "input" error of argument argn: the file or text it names
 * cannot be read ("bad argument #1 'source': cannot read the file ..."). */
int th_input_error(lua_State *L, const char *fn, int argn, const char *argname, const char *fmt, ...);
/* Raise "bad option '<option>': <message>" for an option read outside
 * th_opts (the error names the option in its option field). */
int th_option_error(lua_State *L, const char *fn, const char *option, const char *fmt, ...);
/* Raise an error of kind, lua_pushfstring-style. */
int th_raise(lua_State *L, const char *kind, const char *fn, const char *fmt, ...);
/* Whether the value at idx is an error object of tlsharden. */
int th_is_error(lua_State *L, int idx);
/* The error metatable, and core.error_new and core.is_error into the table
 * on top of the stack (for luaopen). */
void th_error_register(lua_State *L);
void th_error_functions(lua_State *L);

/* Raise a bad-input error ("argument") "tlsharden.<fn>: <message>". */
int th_error(lua_State *L, const char *fn, const char *fmt, ...);
int th_verror(lua_State *L, const char *fn, const char *fmt, va_list ap);
/* Raise "tlsharden.<fn>: bad argument #<n> '<name>': <message>" (no
 * quoted name when name is NULL). */
int th_arg_error(lua_State *L, const char *fn, int argn, const char *name, const char *fmt, ...);
/* Push (and return) the short rendering of the value at idx. */
const char *th_quote(lua_State *L, int idx);
const char *th_quote_lstring(lua_State *L, const char *s, size_t len);

/* Push OpenSSL's queued errors as one string and clear the queue. */
void th_push_ssl_errors(lua_State *L, const char *fallback);

/* One reader for every option table: th_opts_open checks that argument
 * argn is nil or a table whose keys are all in known (NULL-terminated),
 * raising "bad argument #n 'name': unknown option 'x' (known: ...)"; the
 * th_opt_* readers then raise "bad <noun> 'x': expected ..., got <quoted>".
 * noun is "option", or "policy" for harden's rules. */
typedef struct th_opts {
  lua_State *L;
  const char *fn, *noun;
  int idx;     /* the table's stack index, 0 when the argument is absent */
  int anchor;  /* a table keeping values read through metamethods alive */
} th_opts;
void th_opts_open(lua_State *L, th_opts *o, int argn, const char *fn, const char *name,
                  const char *noun, const char *const known[]);
/* Push the option's value; returns its type. */
int th_opt_get(th_opts *o, const char *name);
int th_opt_error(th_opts *o, const char *name, const char *fmt, ...);
/* A string without NUL bytes, not empty unless flags has TH_OPT_EMPTY;
 * with TH_OPT_FALSE, false gives NULL. */
#define TH_OPT_FALSE 1
#define TH_OPT_EMPTY 2
const char *th_opt_string(th_opts *o, const char *name, int flags, const char *dflt);
/* An integer in lo..hi; false gives if_false (TH_NO_FALSE: false refused). */
#define TH_NO_FALSE (-0x7fff)
int th_opt_int(th_opts *o, const char *name, int lo, int hi, int dflt, int if_false);
int th_opt_bool(th_opts *o, const char *name, int dflt);
/* The index of the value in names (NULL-terminated), or dflt when absent. */
int th_opt_enum(th_opts *o, const char *name, const char *const names[], int dflt);

/* --- C values into Lua (push.c) ----------------------------------------------
 * The th_set_* functions set field k of the table on top of the stack. */
void th_set_int(lua_State *L, const char *k, lua_Integer v);
void th_set_bool(lua_State *L, const char *k, int v);
/* Nothing is set when v is NULL. */
void th_set_string(lua_State *L, const char *k, const char *v);
void th_set_bytes(lua_State *L, const char *k, const void *p, size_t n);
/* false for a negative v (a rule or limit that is off), else the integer. */
void th_set_int_or_false(lua_State *L, const char *k, lua_Integer v);
/* false for a NULL v, else the string. */
void th_set_string_or_false(lua_State *L, const char *k, const char *v);
/* Push an ASN1 time as ISO 8601 UTC ("2026-11-24T00:00:00Z"), or nil. */
void th_push_asn1_time(lua_State *L, const ASN1_TIME *t);
/* Push an X509 name in RFC 2253 form. */
void th_push_x509_name(lua_State *L, const X509_NAME *name);

/* --- owned objects (owned.c) -------------------------------------------------
 * A userdata that owns one C object and frees it in __gc, so that nothing
 * leaks when a Lua error unwinds the stack. th_own pushes it; th_release
 * frees the object at once (and is idempotent). */
typedef struct th_owned {
  void *ptr;
  void (*free_fn)(void *);
} th_owned;
/* Create the owned objects' metatable (luaopen_tlsharden_core). */
void th_owned_register(lua_State *L);
th_owned *th_own(lua_State *L, void *ptr, void (*free_fn)(void *));
void th_release(th_owned *o);
void th_free_ssl_ctx(void *p);
void th_free_ssl(void *p);
void th_free_cipher_stack(void *p);

/* OpenSSL option names as LuaSec spells them (options.c), sorted by name.
 * mask marks names covering several bits ("all", "no_ssl_mask"); flag is 0
 * for options that do nothing on OpenSSL 3 (no_sslv2, single_dh_use...);
 * risk says whether switching it off or on lowers security. */
#define TH_OPT_PROTECTS 1  /* switching it off lowers security */
#define TH_OPT_RISKY 2     /* switching it on lowers security */
typedef struct th_option {
  const char *name;
  uint64_t flag;
  int mask;
  int risk;
} th_option;
#define TH_NOPTIONS 53
extern const th_option th_options[];
/* Index of an option name in th_options, or -1. */
int th_option_index(const char *name);
/* Push a sorted list of the (non-mask, non-zero) option names set in set. */
void th_push_option_names(lua_State *L, uint64_t set);

/* LuaSec objects (luasec.c). A context argument may also be a Prosody 13
 * context object, whose _inner field is the LuaSec context. The th_check_*
 * functions raise a Lua error naming fn and the argument; th_test_context
 * returns NULL instead. */
#define TH_LUASEC_CONTEXT "SSL:Context"
#define TH_LUASEC_CONNECTION "SSL:Connection"
SSL_CTX *th_test_context(lua_State *L, int idx, int *mode);
/* Whether the value at idx is a LuaSec context (or a Prosody 13 context
 * object holding one), open or closed. */
int th_is_context(lua_State *L, int idx);
SSL_CTX *th_check_context(lua_State *L, int idx, const char *fn, int *mode);
SSL *th_check_connection(lua_State *L, int idx, const char *fn);
/* Push { min, max, versions, min_version, max_version }. */
void th_push_ctx_versions(lua_State *L, SSL_CTX *ctx);

/* Cipher suites (ciphers.c). */
#define TH_WEAK_NULL   0x01u
#define TH_WEAK_EXPORT 0x02u
#define TH_WEAK_ANON   0x04u
#define TH_WEAK_RC4    0x08u
#define TH_WEAK_DES    0x10u
#define TH_WEAK_MD5    0x20u
#define TH_WEAK_BITS   0x40u  /* fewer than 128 bits of strength */
#define TH_WEAK_CBC    0x80u  /* not AEAD; counted only when strict */
/* Whether the suite's key exchange is ephemeral (forward secret). */
int th_cipher_is_fs(const SSL_CIPHER *c);
/* TH_WEAK_* reasons that apply; TH_WEAK_CBC only when strict. */
unsigned th_cipher_weakness(const SSL_CIPHER *c, int strict);
/* Push the list of names ("NULL", "EXPORT", ...) of the TH_WEAK_* bits in w. */
void th_push_weak_list(lua_State *L, unsigned w);
/* Whether an in-memory TLS 1.2 handshake between a client offering only
 * client_ciphers and the server context succeeds. */
int th_probe_handshake(lua_State *L, SSL_CTX *server, const char *client_ciphers);
/* For a probe connection s of a LuaSec context with `dhparam`: the DH
 * parameters LuaSec's callback would give, set on s itself (luasec.c).
 * LuaSec's callback keeps what it makes until one of LuaSec's own
 * handshakes frees it, so a probe must never reach it. */
void th_luasec_probe_dh(lua_State *L, SSL_CTX *ctx, SSL *s);
/* Whether a client offering only version wire (and every suite) completes
 * an in-memory handshake with the server context: what the context really
 * serves, its security level and certificate included. */
int th_probe_version(lua_State *L, SSL_CTX *server, int wire);
#define TH_PROBE_DHE "kDHE:kDHEPSK:@SECLEVEL=0"
#define TH_PROBE_ECDHE "kECDHE:kECDHEPSK:@SECLEVEL=0"

/* What OpenSSL says about single setting values, remembered per Lua state
 * (values.c). Each returns 1, or 0 with an error message pushed. */
/* Push the verdict on replacing the cipher string at old (0: none) by the
 * one at new_: a message naming the weak or non-forward-secret TLS 1.2
 * suites new_ adds, or false. */
int th_cipher_verdict(lua_State *L, int old, int new_);
/* Only check that OpenSSL matches some suite; pushes nothing. */
int th_cipher_check(lua_State *L, int spec);
/* A curveslist (groups set) or ciphersuites string OpenSSL accepts in full;
 * pushes nothing. */
int th_list_check(lua_State *L, int value, int groups);
/* th_protocol_parse, with the strings seen before remembered. */
int th_protocol_parse_cached(lua_State *L, int idx, th_range *out);
/* The key size of a DH parameter file, or 0 when it cannot be read. */
int th_dhparam_bits(const char *path);

/* What tlsharden knows about a context that OpenSSL cannot tell back,
 * kept in tlsharden's own ex_data slot (harden_state.c); NULL when nothing
 * was recorded and create is 0. */
typedef struct th_ctx_state {
  int unusable;          /* a hardening failed half way: every version is off */
  int dh_auto;           /* harden switched automatic DH parameters on */
  char failed_step[64];
  char groups[256];      /* the groups list harden set */
  struct th_report *report;  /* what the latest hardening changed (harden_report.c) */
  /* how the state frees report: set by whoever stores one, so that the
   * state (freed by OpenSSL with the context) needs no call into the
   * report's file */
  void (*report_free)(struct th_report *);
} th_ctx_state;
th_ctx_state *th_ctx_state_get(lua_State *L, SSL_CTX *ctx, int create);

/* Certificate chains. th_chain_source (chain_source.c) reads argument 1
 * into certs, leaf first, and returns the context it came from (mode set)
 * or NULL. identity.c matches XMPP identities (RFC 6125, 6120, 7590). */
SSL_CTX *th_chain_source(lua_State *L, STACK_OF(X509) *certs, int *mode);
int th_identity_matches(X509 *leaf, const char *host, const char *service);
#define TH_NAMES_DNS 0
#define TH_NAMES_SRV 1
#define TH_NAMES_XMPP 2
/* Push the list of the certificate's DNS-IDs, SRV-IDs or XmppAddrs. */
void th_push_names(lua_State *L, X509 *x, int kind);
/* Whether the value at idx is a number with an exact integer value (then
 * stored in *out), the same on Lua 5.2 to 5.4 (args.c). */
int th_integer(lua_State *L, int idx, lua_Integer *out);

/* The cipher suite registry (suites.c): IANA's TLS suites, a few widely
 * deployed unregistered ones and the SSLv2 cipher kinds, sorted by id. */
#define TH_SUITE_AEAD 0x01u
#define TH_SUITE_EXPORT 0x02u
#define TH_SUITE_FS 0x04u
#define TH_SUITE_TLS13 0x08u          /* negotiable in TLS 1.3 only */
#define TH_SUITE_UNREGISTERED 0x10u   /* deployed, but not in IANA's registry */
#define TH_SUITE_SCSV 0x20u           /* a signalling value, not a suite */
#define TH_SUITE_SSLV2 0x40u          /* an SSLv2 cipher kind (3-byte id) */
typedef struct th_suite {
  uint32_t id;          /* 2-byte TLS code, or 3-byte SSLv2 kind */
  const char *iana;     /* IANA name (for unregistered ones, the usual name) */
  const char *openssl;  /* OpenSSL's name, NULL when OpenSSL never had one */
  const char *kx, *auth, *enc, *mac;  /* NULL for SCSVs */
  short bits, alg_bits; /* effective strength, algorithm key size */
  unsigned char version; /* TH_V_* minimum protocol */
  unsigned char flags;   /* TH_SUITE_* */
} th_suite;
extern const th_suite th_suites[];
extern const int th_nsuites;
/* The entry for id, or NULL. */
const th_suite *th_suite_find(uint32_t id);
/* Whether s can be negotiated at version (TH_V_*): no SCSV, SSLv2 kinds
 * only in SSLv2, TLS 1.3 suites only in TLS 1.3. */
int th_suite_usable(const th_suite *s, int version);

/* The supported groups registry (groups.c), sorted by id. alg and curve
 * tell OpenSSL how to make a key share (alg NULL: it cannot). */
typedef struct th_group {
  unsigned id;
  const char *name, *kind, *alg, *curve;
  int bits;
  int tls13;  /* usable in TLS 1.3 */
} th_group;
const th_group *th_group_find(unsigned id);
/* By IANA name (exact, NUL-free), or NULL. */
const th_group *th_group_named(const char *name, size_t len);

/* Module functions, one group per C file. */
int th_protocol(lua_State *L);          /* protocol.c */
int th_versions_in_force(lua_State *L); /* luasec.c */
int th_option_names(lua_State *L);      /* options.c */
int th_ciphers(lua_State *L);           /* ciphers.c */
int th_forward_secrecy(lua_State *L);   /* ciphers.c */
int th_merge(lua_State *L);             /* merge.c */
int th_harden(lua_State *L);            /* harden.c */
int th_harden_defaults(lua_State *L);   /* harden_policy.c */
int th_harden_report(lua_State *L);     /* harden_report.c */
int th_inspect(lua_State *L);           /* inspect.c */
int th_key_kind(lua_State *L);          /* inspect.c */
int th_chain(lua_State *L);             /* chain.c */
int th_load_key(lua_State *L);          /* keys.c */
int th_quote_value(lua_State *L);       /* args.c */
int th_dns_query(lua_State *L);         /* dns.c */
int th_dns_parse(lua_State *L);         /* dns.c */
int th_dns_rdata(lua_State *L);         /* dns_parse.c */
int th_dane_match(lua_State *L);        /* dane.c */

int th_suites_list(lua_State *L);          /* suites.c */
int th_suite_lookup(lua_State *L);          /* suites.c */
int th_groups_list(lua_State *L);           /* groups.c */
int th_client_hello(lua_State *L);          /* hello.c */
int th_replay_hello(lua_State *L);          /* hello.c */
int th_parse_server_flight(lua_State *L);   /* flight.c */
int th_parse_client_hello(lua_State *L);    /* hello_parse.c */
int th_wire_record(lua_State *L);           /* records.c */
int th_wire_heartbeat_request(lua_State *L);  /* records.c */
int th_wire_parse_records(lua_State *L);    /* records.c */
int th_wire_robot_key_exchange(lua_State *L);  /* records.c */
int th_wire_parse_session(lua_State *L);    /* session.c */
int th_connection_session(lua_State *L);    /* session.c */
int th_context_answer_hello(lua_State *L);  /* answer.c */

#endif
