# A client for scripts/record-hellos.lua: Python's ssl module with its
# default context (ssl.create_default_context()), as slixmpp and Poezio
# use it, after XMPP's STARTTLS or as direct TLS.
#   python3 python_ssl.py HOST PORT TRANSPORT KIND SNI ALPN   (ALPN: - for none)
import socket
import ssl
import sys

host, port, transport, kind, sni, alpn = sys.argv[1:7]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
if alpn != "-":
    ctx.set_alpn_protocols([alpn])
sock = socket.create_connection((host, int(port)), timeout=10)
if transport == "starttls":
    ns = "jabber:client" if kind == "c2s" else "jabber:server"
    sock.sendall(("<?xml version='1.0'?><stream:stream xmlns='%s' xmlns:stream='http://etherx.jabber.org/streams'"
                  " to='%s' version='1.0'>" % (ns, sni)).encode())
    buf = b""
    while b"</stream:features>" not in buf:
        buf += sock.recv(1)
    sock.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    while not (b"<proceed" in buf and buf.endswith(b">")):
        buf += sock.recv(1)
try:
    ctx.wrap_socket(sock, server_hostname=sni)
except (ssl.SSLError, OSError) as e:
    print(e)
