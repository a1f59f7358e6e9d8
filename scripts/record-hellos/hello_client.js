// A client for scripts/record-hellos.lua: Node.js's tls module with its
// defaults (as xmpp.js uses it), after XMPP's STARTTLS or as direct TLS.
//   node hello_client.js HOST PORT TRANSPORT KIND SNI ALPN   (ALPN: - for none)
'use strict';
const net = require('net');
const tls = require('tls');

const [host, port, transport, kind, sni, alpn] = process.argv.slice(2, 8);
const options = { servername: sni, rejectUnauthorized: false };
if (alpn !== '-') options.ALPNProtocols = [alpn];

function handshake(socket) {
  const t = tls.connect(Object.assign({ socket }, options));
  t.on('error', (e) => { console.log(e.message); process.exit(0); });
  t.on('close', () => process.exit(0));
}

if (transport === 'direct') {
  handshake(net.connect(Number(port), host));
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
      handshake(s);
    }
  };
  s.on('data', onData);
  s.on('error', (e) => { console.log(e.message); process.exit(0); });
}
