# A client for scripts/record-hellos.lua: GLib's GIO TLS (the
# glib-networking backend GLib picks here), as Gajim (nbxmpp) and Dino use
# it: a GTlsClientConnection over a plain connection, after XMPP's
# STARTTLS or as direct TLS.
#   python3 gio_tls.py HOST PORT TRANSPORT KIND SNI ALPN   (ALPN: - for none)
import sys

import gi
gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

host, port, transport, kind, sni, alpn = sys.argv[1:7]
if len(sys.argv) > 7 and sys.argv[7] == "--version":
    print(type(Gio.TlsBackend.get_default()).__name__)
    sys.exit(0)
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
        buf += inp.read_bytes(1, None).get_data()
    out.write_all(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", None)
    while not (b"<proceed" in buf and buf.endswith(b">")):
        buf += inp.read_bytes(1, None).get_data()
tls = Gio.TlsClientConnection.new(conn, Gio.NetworkAddress.new(sni, int(port)))
tls.set_validation_flags(0)
tls.connect("accept-certificate", lambda *a: True)
if alpn != "-":
    tls.set_advertised_protocols([alpn])
try:
    tls.handshake(None)
except GLib.Error as e:
    print(e.message)
