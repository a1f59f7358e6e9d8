# A client for scripts/record-hellos.lua: GLib's GIO TLS (the
# glib-networking backend GLib picks here), as Gajim (nbxmpp) and Dino use
# it: a GTlsClientConnection over a plain connection, after XMPP's
# STARTTLS or as direct TLS.
#   python3 gio_tls.py HOST PORT TRANSPORT KIND SNI ALPN [handshake [CAFILE]]   (ALPN: - for none)
# With "handshake" it completes the handshake (every certificate accepted,
# or verified against CAFILE with the host name SNI) and prints one line
# for spec/helpers/real_clients.lua:
#   RESULT ok protocol=TLS_1_3 suite=TLS_AES_128_GCM_SHA256   or   RESULT fail reason=...
# GIO tells neither the group nor the DH size.
import sys
import warnings

import gi
gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

warnings.simplefilter("ignore", DeprecationWarning)
host, port, transport, kind, sni, alpn = sys.argv[1:7]
if len(sys.argv) > 7 and sys.argv[7] == "--version":
    print(type(Gio.TlsBackend.get_default()).__name__)
    sys.exit(0)
handshake = len(sys.argv) > 7 and sys.argv[7] == "handshake"
cafile = sys.argv[8] if handshake and len(sys.argv) > 8 else None


def fail(reason):
    print("RESULT fail reason=" + " ".join(str(reason).split()))
    sys.exit(0)


try:
    client = Gio.SocketClient.new()
    client.set_timeout(10)
    conn = client.connect_to_host(host, int(port), None)
    if transport == "starttls":
        ns = "jabber:client" if kind == "c2s" else "jabber:server"
        out, inp = conn.get_output_stream(), conn.get_input_stream()
        out.write_all(("<?xml version='1.0'?><stream:stream xmlns='%s' xmlns:stream='http://etherx.jabber.org/streams'"
                       " to='%s' version='1.0'>" % (ns, sni)).encode(), None)
        buf = b""
        while b"</stream:features>" not in buf:
            b = inp.read_bytes(1, None).get_data()
            if not b:
                raise GLib.Error("the server closed the stream before its features")
            buf += b
        out.write_all(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", None)
        while not (b"<proceed" in buf and buf.endswith(b">")):
            b = inp.read_bytes(1, None).get_data()
            if not b:
                raise GLib.Error("the server closed the stream before <proceed/>")
            buf += b
except GLib.Error as e:
    if handshake:
        fail(e.message)
    print(e.message)
    sys.exit(0)
tls = Gio.TlsClientConnection.new(conn, Gio.NetworkAddress.new(sni, int(port)))
if cafile:
    tls.set_database(Gio.TlsFileDatabase.new(cafile))
else:
    tls.set_validation_flags(0)
    tls.connect("accept-certificate", lambda *a: True)
if alpn != "-":
    tls.set_advertised_protocols([alpn])
try:
    tls.handshake(None)
except GLib.Error as e:
    if handshake:
        fail(e.message)
    print(e.message)
    sys.exit(0)
if handshake:
    version = tls.get_protocol_version().value_nick.upper().replace("-", "_")
    print("RESULT ok protocol=%s suite=%s" % (version, tls.get_ciphersuite_name()))
    tls.close(None)
