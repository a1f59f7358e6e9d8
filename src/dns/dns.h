/* DNS wire constants and the type names shared by dns.c (queries) and
 * dns_parse.c (messages). Internal to those two files. */
#ifndef TLSHARDEN_DNS_H
#define TLSHARDEN_DNS_H

#include <stdint.h>

#include "core/tlsharden.h"

#define FN_QUERY "wire.dns_query"
#define FN_PARSE "wire.dns_parse"
#define FN_RDATA "wire.dns_rdata"

#define DNS_HEADER 12
#define DNS_MAX_MESSAGE 65535
#define DNS_MAX_NAME 255     /* wire octets, the root label included */
#define DNS_MAX_LABEL 63
/* A name as text: every octet may need four bytes (\DDD), plus the dots. */
#define DNS_NAME_TEXT (DNS_MAX_NAME * 4 + 2)
#define DNS_DEFAULT_UDP 1232 /* the DNS flag day 2020 size */

#define TYPE_A 1
#define TYPE_NS 2
#define TYPE_CNAME 5
#define TYPE_SOA 6
#define TYPE_PTR 12
#define TYPE_MX 15
#define TYPE_TXT 16
#define TYPE_AAAA 28
#define TYPE_SRV 33
#define TYPE_DNAME 39
#define TYPE_OPT 41
#define TYPE_TLSA 52

#define EDNS_OPT_EDE 15      /* extended DNS error, RFC 8914 */

/* The name of a type, or NULL. */
const char *th_dns_type_name(int value);

/* The type named or numbered at stack index idx (1..65535, not OPT), or
 * raises a bad-argument error of fn's argument arg. */
int th_dns_type_arg(lua_State *L, int idx, const char *fn, int arg, const char *argname);

#endif
