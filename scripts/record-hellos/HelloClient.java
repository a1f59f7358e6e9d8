// A client for scripts/record-hellos.lua: Java's SunJSSE with the default
// SSLContext (as Smack, Openfire and Tigase use it unless configured
// otherwise), after XMPP's STARTTLS or as direct TLS.
//   java HelloClient HOST PORT TRANSPORT KIND SNI ALPN [handshake [CAFILE]]   (ALPN: - for none)
// With "handshake" it completes the handshake and prints one line for
// spec/helpers/real_clients.lua:
//   RESULT ok protocol=TLSv1.3 suite=TLS_AES_128_GCM_SHA256   or   RESULT fail reason=...
// There the context is SSLContext "TLS" with a trust manager that trusts
// every certificate: a plain X509TrustManager, which SunJSSE wraps with
// its algorithm constraints (jdk.tls.disabledAlgorithms and
// jdk.certpath.disabledAlgorithms still apply, as they do when verifying);
// with CAFILE, the default trust manager over a key store holding the
// certificates of CAFILE, and the host name SNI checked (HTTPS's rules).
// SSLSession tells neither the group nor the DH size.
import java.io.FileInputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.List;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSession;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509TrustManager;

public class HelloClient {
  public static void main(String[] a) throws Exception {
    String host = a[0], transport = a[2], kind = a[3], sni = a[4], alpn = a[5];
    boolean handshake = a.length > 6 && a[6].equals("handshake");
    String cafile = handshake && a.length > 7 ? a[7] : null;
    int port = Integer.parseInt(a[1]);
    SSLSocket s;
    try {
      Socket plain = new Socket();
      plain.connect(new InetSocketAddress(host, port), 10000);
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
      SSLContext context = SSLContext.getDefault();
      if (handshake) {
        context = SSLContext.getInstance("TLS");
        context.init(null, cafile == null ? new TrustManager[] {new TrustAll()} : trusting(cafile), null);
      }
      s = (SSLSocket) context.getSocketFactory().createSocket(plain, sni, port, true);
    } catch (Exception e) {
      System.out.println(handshake ? "RESULT fail reason=" + oneLine(e) : e.toString());
      return;
    }
    SSLParameters p = s.getSSLParameters();
    p.setServerNames(List.of(new SNIHostName(sni)));
    if (!alpn.equals("-")) p.setApplicationProtocols(new String[] {alpn});
    if (cafile != null) p.setEndpointIdentificationAlgorithm("HTTPS");
    s.setSSLParameters(p);
    try {
      s.startHandshake();
      if (handshake) {
        SSLSession session = s.getSession();
        System.out.println("RESULT ok protocol=" + session.getProtocol() + " suite=" + session.getCipherSuite());
        s.close();
      }
    } catch (Exception e) {
      System.out.println(handshake ? "RESULT fail reason=" + oneLine(e) : e.toString());
    }
  }

  // The default trust manager over the certificates of a PEM file.
  static TrustManager[] trusting(String cafile) throws Exception {
    KeyStore store = KeyStore.getInstance(KeyStore.getDefaultType());
    store.load(null, null);
    int n = 0;
    try (FileInputStream in = new FileInputStream(cafile)) {
      for (Certificate c : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
        store.setCertificateEntry("ca" + n++, c);
      }
    }
    TrustManagerFactory f = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    f.init(store);
    return f.getTrustManagers();
  }

  static String oneLine(Exception e) {
    return e.toString().replaceAll("\\s+", " ");
  }

  // Trusts every certificate; SunJSSE still applies its algorithm constraints.
  static class TrustAll implements X509TrustManager {
    public void checkClientTrusted(X509Certificate[] chain, String authType) {}

    public void checkServerTrusted(X509Certificate[] chain, String authType) {}

    public X509Certificate[] getAcceptedIssuers() {
      return new X509Certificate[0];
    }
  }

  // Read one byte at a time until the text read holds mark and ends a tag.
  static void readUntil(InputStream in, String mark) throws Exception {
    StringBuilder b = new StringBuilder();
    while (!(b.indexOf(mark) >= 0 && b.charAt(b.length() - 1) == '>')) {
      int c = in.read();
      if (c < 0) throw new java.io.EOFException("the server closed the stream before " + mark);
      b.append((char) c);
    }
  }
}
