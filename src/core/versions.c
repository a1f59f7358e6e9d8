/* The protocol versions tlsharden knows, in one table: the name LuaSec
 * spells, the label people read, the number on the wire, LuaSec's option
 * that switches the version off, and whether an OpenSSL 3 context can use
 * it at all. Protocol specs and contexts (protocol.c, luasec.c), the merge,
 * the suite registry, the ClientHello writer and the flight parser all read
 * this table, and core.protocols shows it to the Lua modules. */
#include <openssl/ssl.h>

#include "core/tlsharden.h"

const th_version th_versions[TH_NVERSIONS] = {
  [TH_V_SSL2] = {"sslv2", "SSL 2.0", "no_sslv2", 0x0002, 0},
  [TH_V_SSL3] = {"sslv3", "SSL 3.0", "no_sslv3", SSL3_VERSION, 1},
  [TH_V_TLS1] = {"tlsv1", "TLS 1.0", "no_tlsv1", TLS1_VERSION, 1},
  [TH_V_TLS11] = {"tlsv1_1", "TLS 1.1", "no_tlsv1_1", TLS1_1_VERSION, 1},
  [TH_V_TLS12] = {"tlsv1_2", "TLS 1.2", "no_tlsv1_2", TLS1_2_VERSION, 1},
  [TH_V_TLS13] = {"tlsv1_3", "TLS 1.3", "no_tlsv1_3", TLS1_3_VERSION, 1},
};

int th_version_index(int wire) {
  int i;
  for (i = 0; i < TH_NVERSIONS; i++)
    if (th_versions[i].wire == wire) return i;
  return -1;
}

void th_push_protocols(lua_State *L) {
  int i;
  lua_createtable(L, TH_NVERSIONS, 0);
  for (i = 0; i < TH_NVERSIONS; i++) {
    lua_createtable(L, 0, 3);
    th_set_string(L, "name", th_versions[i].name);
    th_set_string(L, "label", th_versions[i].label);
    th_set_int(L, "wire", th_versions[i].wire);
    lua_rawseti(L, -2, i + 1);
  }
}
