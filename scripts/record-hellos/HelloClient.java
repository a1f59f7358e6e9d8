// A client for scripts/record-hellos.lua: Java's SunJSSE with the default
// SSLContext (as Smack, Openfire and Tigase use it unless configured
// otherwise), after XMPP's STARTTLS or as direct TLS.
//   java HelloClient HOST PORT TRANSPORT KIND SNI ALPN   (ALPN: - for none)
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.List;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;

public class HelloClient {
  public static void main(String[] a) throws Exception {
    String host = a[0], transport = a[2], kind = a[3], sni = a[4], alpn = a[5];
    int port = Integer.parseInt(a[1]);
    Socket plain = new Socket(host, port);
    plain.setSoTimeout(10000);
    if (transport.equals("starttls")) {
      String ns = kind.equals("c2s") ? "jabber:client" : "jabber:server";
      OutputStream out = plain.getOutputStream();
      out.write(("<?xml version='1.0'?><stream:stream xmlns='" + ns
          + "' xmlns:stream='http://etherx.jabber.org/streams' to='" + sni + "' version='1.0'>")
          .getBytes(StandardCharsets.UTF_8));
      readUntil(plain.getInputStream(), "</stream:features>");
      out.write("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>".getBytes(StandardCharsets.UTF_8));
      readUntil(plain.getInputStream(), "<proceed");
    }
    SSLSocket s = (SSLSocket) SSLContext.getDefault().getSocketFactory().createSocket(plain, sni, port, true);
    SSLParameters p = s.getSSLParameters();
    p.setServerNames(List.of(new SNIHostName(sni)));
    if (!alpn.equals("-")) p.setApplicationProtocols(new String[] {alpn});
    s.setSSLParameters(p);
    try {
      s.startHandshake();
    } catch (Exception e) {
      System.out.println(e);
    }
  }

  // Read one byte at a time until the text read holds mark and ends a tag.
  static void readUntil(InputStream in, String mark) throws Exception {
    StringBuilder b = new StringBuilder();
    while (!(b.indexOf(mark) >= 0 && b.charAt(b.length() - 1) == '>')) {
      int c = in.read();
      if (c < 0) return;
      b.append((char) c);
    }
  }
}
