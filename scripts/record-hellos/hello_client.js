// A client for scripts/record-hellos.lua: Node.js's tls module with its
// defaults (as xmpp.js uses it), after XMPP's STARTTLS or as direct TLS.
//   node hello_client.js HOST PORT TRANSPORT KIND SNI ALPN [handshake [CAFILE]]   (ALPN: - for none)
// With "handshake" it completes the handshake (no certificate verification,
// or verified against CAFILE with the host name SNI) and prints one line
// for spec/helpers/real_clients.lua:
//   RESULT ok protocol=TLSv1.3 suite=TLS_AES_128_GCM_SHA256 group=X25519 [dh_bits=N]   or   RESULT fail reason=...
'use strict';
const net = require('net');
const tls = require('tls');

const [host, port, transport, kind, sni, alpn, mode, cafile] = process.argv.slice(2, 10);
const handshakeMode = mode === 'handshake';
const options = { servername: sni, rejectUnauthorized: false };
if (handshakeMode && cafile) Object.assign(options, { rejectUnauthorized: true, ca: require('fs').readFileSync(cafile) });
if (alpn !== '-') options.ALPNProtocols = [alpn];

function failed(e) {
  console.log(handshakeMode ? 'RESULT fail reason=' + String(e.message || e).replace(/\s+/g, ' ') : e.message);
  process.exit(0);
}

function handshake(socket) {
  const t = tls.connect(Object.assign({ socket }, options), () => {
    if (handshakeMode) {
      const key = t.getEphemeralKeyInfo() || {};
      let line = `RESULT ok protocol=${t.getProtocol()} suite=${t.getCipher().standardName}`;
      if (key.type === 'ECDH' && key.name) line += ` group=${key.name}`;
      if (key.type === 'DH' && key.size) line += ` dh_bits=${key.size}`;
      console.log(line);
    }
    t.destroy();
  });
  t.on('error', failed);
  t.on('close', () => process.exit(0));
}

if (transport === 'direct') {
  const s = net.connect(Number(port), host);
  s.on('error', failed);
  handshake(s);
} else {
  const s = net.connect(Number(port), host, () => {
    const ns = kind === 'c2s' ? 'jabber:client' : 'jabber:server';
    s.write(`<?xml version='1.0'?><stream:stream xmlns='${ns}' xmlns:stream='http://etherx.jabber.org/streams' to='${sni}' version='1.0'>`);
  });
  let buf = '';
  let sent = false;
  const onData = (d) => {
    buf += d.toString('latin1');
    if (!sent && buf.includes('</stream:features>')) {
      sent = true;
      s.write("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    }
    if (sent && /<proceed[^>]*>/.test(buf)) {
      s.removeListener('data', onData);
      s.removeListener('error', failed);
      handshake(s);
    }
  };
  s.on('data', onData);
  s.on('error', failed);
  s.on('end', () => { if (!sent || !/<proceed[^>]*>/.test(buf)) failed(new Error('the server closed the stream before <proceed/>')); });
}
