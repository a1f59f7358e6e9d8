// A client for scripts/record-hellos.lua: Go's crypto/tls with its
// default configuration (as Go XMPP libraries such as mellium.im/xmpp use
// it), after XMPP's STARTTLS or as direct TLS.
//   go run hello_client.go HOST PORT TRANSPORT KIND SNI ALPN   (ALPN: - for none)
package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

func main() {
	host, port, transport, kind, sni, alpn := os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5], os.Args[6]
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), 10*time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	if transport == "starttls" {
		ns := "jabber:client"
		if kind == "s2s" {
			ns = "jabber:server"
		}
		fmt.Fprintf(conn, "<?xml version='1.0'?><stream:stream xmlns='%s' xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>", ns, sni)
		readUntil(conn, "</stream:features>")
		fmt.Fprint(conn, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
		readUntil(conn, "<proceed")
	}
	config := &tls.Config{ServerName: sni, InsecureSkipVerify: true}
	if alpn != "-" {
		config.NextProtos = []string{alpn}
	}
	fmt.Println(tls.Client(conn, config).Handshake())
}

// readUntil reads one byte at a time until the text read holds mark and
// ends a tag.
func readUntil(conn net.Conn, mark string) {
	var buf strings.Builder
	b := make([]byte, 1)
	for !(strings.Contains(buf.String(), mark) && strings.HasSuffix(buf.String(), ">")) {
		if _, err := conn.Read(b); err != nil {
			return
		}
		buf.Write(b)
	}
}
