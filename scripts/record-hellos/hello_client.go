// A client for scripts/record-hellos.lua: Go's crypto/tls with its
// default configuration (as Go XMPP libraries such as mellium.im/xmpp use
// it), after XMPP's STARTTLS or as direct TLS.
//
//	go run hello_client.go HOST PORT TRANSPORT KIND SNI ALPN [handshake [CAFILE]]   (ALPN: - for none)
//
// With "handshake" it completes the handshake (no certificate verification,
// or verified against CAFILE with the host name SNI) and prints one line
// for spec/helpers/real_clients.lua:
//
//	RESULT ok protocol=TLSv1.3 suite=TLS_AES_128_GCM_SHA256   or   RESULT fail reason=...
//
// Go 1.19's ConnectionState does not tell the group, and Go has no DHE.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

var versions = map[uint16]string{
	tls.VersionTLS10: "TLSv1", tls.VersionTLS11: "TLSv1.1", tls.VersionTLS12: "TLSv1.2", tls.VersionTLS13: "TLSv1.3",
}

func main() {
	host, port, transport, kind, sni, alpn := os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5], os.Args[6]
	handshake := len(os.Args) > 7 && os.Args[7] == "handshake"
	fail := func(err error) {
		if handshake {
			fmt.Println("RESULT fail reason=" + strings.Join(strings.Fields(err.Error()), " "))
		} else {
			fmt.Println(err)
		}
	}
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), 10*time.Second)
	if err != nil {
		fail(err)
		return
	}
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	if transport == "starttls" {
		ns := "jabber:client"
		if kind == "s2s" {
			ns = "jabber:server"
		}
		fmt.Fprintf(conn, "<?xml version='1.0'?><stream:stream xmlns='%s' xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>", ns, sni)
		if err := readUntil(conn, "</stream:features>"); err != nil {
			fail(err)
			return
		}
		fmt.Fprint(conn, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
		if err := readUntil(conn, "<proceed"); err != nil {
			fail(err)
			return
		}
	}
	config := &tls.Config{ServerName: sni, InsecureSkipVerify: true}
	if handshake && len(os.Args) > 8 {
		pem, err := os.ReadFile(os.Args[8])
		if err != nil {
			fail(err)
			return
		}
		config.RootCAs = x509.NewCertPool()
		config.RootCAs.AppendCertsFromPEM(pem)
		config.InsecureSkipVerify = false
	}
	if alpn != "-" {
		config.NextProtos = []string{alpn}
	}
	c := tls.Client(conn, config)
	err = c.Handshake()
	if !handshake {
		fmt.Println(err)
		return
	}
	if err != nil {
		fail(err)
		return
	}
	state := c.ConnectionState()
	fmt.Printf("RESULT ok protocol=%s suite=%s\n", versions[state.Version], tls.CipherSuiteName(state.CipherSuite))
	c.Close()
}

// readUntil reads one byte at a time until the text read holds mark and
// ends a tag.
func readUntil(conn net.Conn, mark string) error {
	var buf strings.Builder
	b := make([]byte, 1)
	for !(strings.Contains(buf.String(), mark) && strings.HasSuffix(buf.String(), ">")) {
		if _, err := conn.Read(b); err != nil {
			return errors.New("the server closed the stream before " + mark + ": " + err.Error())
		}
		buf.Write(b)
	}
	return nil
}
