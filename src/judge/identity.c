/* XMPP identity of a certificate: whether it names a domain for a service,
 * by the rules of RFC 6125 with the XMPP identifiers of RFC 6120 section
 * 13.7.1.2 and RFC 7590: DNS-ID (wildcards in the left-most label only),
 * SRV-ID (_xmpp-client / _xmpp-server), XmppAddr, and the subject CN only
 * when the certificate has none of these. The matching is plain C over the
 * certificate's names; only th_push_names talks to Lua. */
#include <ctype.h>
#include <string.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/tlsharden.h"

static int label_eq(const char *a, const char *b, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i])) return 0;
  return 1;
}

static int dns_id_matches(const char *pattern, size_t plen, const char *host, size_t hlen) {
  const char *dot;
  if (plen && pattern[plen - 1] == '.') plen--;
  if (hlen && host[hlen - 1] == '.') hlen--;
  if (plen == 0 || hlen == 0) return 0;
  if (plen == hlen && label_eq(pattern, host, hlen)) return 1;
  if (plen > 2 && pattern[0] == '*' && pattern[1] == '.') {
    dot = memchr(host, '.', hlen);
    if (!dot || dot == host) return 0;
    /* the rest must have at least two labels: no "*.com" */
    if (!memchr(pattern + 2, '.', plen - 2)) return 0;
    return (size_t)(host + hlen - dot) == plen - 1 && label_eq(pattern + 1, dot, plen - 1);
  }
  return 0;
}

/* "_xmpp-client.example.com": the service must match when one is given. */
static int srv_id_matches(const char *p, size_t len, const char *host, size_t hlen,
                          const char *service) {
  const char *dot = len > 1 && p[0] == '_' ? memchr(p, '.', len) : NULL;
  size_t slen;
  if (!dot) return 0;
  slen = (size_t)(dot - p - 1);
  if (service && !(strlen(service) == slen && strncmp(p + 1, service, slen) == 0)) return 0;
  return dns_id_matches(dot + 1, len - (size_t)(dot + 1 - p), host, hlen);
}

static const ASN1_STRING *xmpp_name(const GENERAL_NAME *g, int nid_wanted, int type_wanted) {
  const ASN1_TYPE *v;
  if (g->type != GEN_OTHERNAME || OBJ_obj2nid(g->d.otherName->type_id) != nid_wanted) return NULL;
  v = g->d.otherName->value;
  return v && v->type == type_wanted ? v->value.asn1_string : NULL;
}

int th_identity_matches(X509 *leaf, const char *host, const char *service) {
  GENERAL_NAMES *names = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
  size_t hlen = strlen(host);
  int i, any = 0, ok = 0;
  for (i = 0; names && i < sk_GENERAL_NAME_num(names) && !ok; i++) {
    const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
    const ASN1_STRING *s;
    if (g->type == GEN_DNS) {
      s = g->d.dNSName;
      any = 1;
      ok = dns_id_matches((const char *)ASN1_STRING_get0_data(s),
                             (size_t)ASN1_STRING_length(s), host, hlen);
    } else if ((s = xmpp_name(g, NID_SRVName, V_ASN1_IA5STRING)) != NULL) {
      any = 1;
      ok = srv_id_matches((const char *)ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s),
                          host, hlen, service);
    } else if ((s = xmpp_name(g, NID_XmppAddr, V_ASN1_UTF8STRING)) != NULL) {
      any = 1;
      ok = (size_t)ASN1_STRING_length(s) == hlen &&
           label_eq((const char *)ASN1_STRING_get0_data(s), host, hlen);
    }
  }
  GENERAL_NAMES_free(names);
  if (!any && !ok) {
    char cn[256];
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn, sizeof cn);
    if (n > 0) ok = dns_id_matches(cn, (size_t)n, host, hlen);
  }
  return ok;
}

void th_push_names(lua_State *L, X509 *x, int kind) {
  GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
  int i, n = 0;
  lua_newtable(L);
  for (i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
    const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
    const ASN1_STRING *s = NULL;
    if (kind == TH_NAMES_DNS && g->type == GEN_DNS) s = g->d.dNSName;
    else if (kind == TH_NAMES_SRV) s = xmpp_name(g, NID_SRVName, V_ASN1_IA5STRING);
    else if (kind == TH_NAMES_XMPP) s = xmpp_name(g, NID_XmppAddr, V_ASN1_UTF8STRING);
    if (s) {
      lua_pushlstring(L, (const char *)ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
      lua_rawseti(L, -2, ++n);
    }
  }
  GENERAL_NAMES_free(names);
}
