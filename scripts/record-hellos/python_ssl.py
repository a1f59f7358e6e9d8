# A client for scripts/record-hellos.lua: Python's ssl module with its
# default context (ssl.create_default_context()), as slixmpp and Poezio
# use it, after XMPP's STARTTLS or as direct TLS.
#   python3 python_ssl.py HOST PORT TRANSPORT KIND SNI ALPN [handshake [CAFILE]]   (ALPN: - for none)
# With "handshake" it completes the handshake (no certificate verification,
# or verified against CAFILE with the host name SNI) and prints one line
# for spec/helpers/real_clients.lua:
#   RESULT ok protocol=TLSv1.3 suite=TLS_AES_128_GCM_SHA256   or   RESULT fail reason=...
import socket
import ssl
import sys

host, port, transport, kind, sni, alpn = sys.argv[1:7]
handshake = len(sys.argv) > 7 and sys.argv[7] == "handshake"
cafile = sys.argv[8] if handshake and len(sys.argv) > 8 else None


def fail(reason):
    print("RESULT fail reason=" + " ".join(str(reason).split()))
    sys.exit(0)


ctx = ssl.create_default_context()
if cafile:
    ctx.load_verify_locations(cafile)
else:
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
if alpn != "-":
    ctx.set_alpn_protocols([alpn])
try:
    sock = socket.create_connection((host, int(port)), timeout=10)
    if transport == "starttls":
        ns = "jabber:client" if kind == "c2s" else "jabber:server"
        sock.sendall(("<?xml version='1.0'?><stream:stream xmlns='%s' xmlns:stream='http://etherx.jabber.org/streams'"
                      " to='%s' version='1.0'>" % (ns, sni)).encode())
        buf = b""
        while b"</stream:features>" not in buf:
            b = sock.recv(1)
            if not b:
                raise OSError("the server closed the stream before its features")
            buf += b
        sock.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        while not (b"<proceed" in buf and buf.endswith(b">")):
            b = sock.recv(1)
            if not b:
                raise OSError("the server closed the stream before <proceed/>")
            buf += b
except OSError as e:
    if handshake:
        fail(e)
    print(e)
    sys.exit(0)
try:
    tls = ctx.wrap_socket(sock, server_hostname=sni)
except (ssl.SSLError, OSError) as e:
    if handshake:
        fail(e)
    print(e)
    sys.exit(0)
if handshake:
    print("RESULT ok protocol=%s suite=%s" % (tls.version(), tls.cipher()[0]))
    tls.close()
