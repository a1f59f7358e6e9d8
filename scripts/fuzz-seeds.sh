#!/bin/sh
# Write the seed corpus of every fuzz target into fuzz/corpus/TARGET/.
# Seeds are generated here rather than committed.
set -eu
cd "$(dirname "$0")/.."
seed() { # seed TARGET NAME CONTENT
  mkdir -p "fuzz/corpus/$1"
  printf '%s' "$3" > "fuzz/corpus/$1/$2"
}
seed_bytes() { # seed_bytes TARGET NAME PRINTF-FORMAT (may hold \000)
  mkdir -p "fuzz/corpus/$1"
  printf "$3" > "fuzz/corpus/$1/$2"
}
i=0
for s in "tlsv1_2+" "tlsv1_2" "sslv23" "any" "sslv3" "tlsv1" "tlsv1_1" "tlsv1_3+" \
         "TLSv1.2:TLSv1.3" "TLSv1.2" "tlsv1_2-tlsv1_3" " TLSV1.1+ " "'tlsv1.2'" \
         "TLSv1:TLSv1.2" "tlsv1_2++" ""; do
  i=$((i + 1)); seed protocol "s$i" "$s"
done
seed protocol list1 "$(printf 'tlsv1.2\ntlsv1.3')"
seed protocol list2 "$(printf "'tlsv1.2'\nsslv3\ntlsv1")"

i=0
for s in "HIGH+kEECDH:HIGH+kEDH:HIGH:!PSK:!SRP:!3DES:!aNULL" "ALL:@SECLEVEL=0" "ECDHE+AESGCM" "kRSA" \
         "DEFAULT" "aNULL" "!ALL" "ALL:!ADH:!LOW:!EXP:!MD5:@STRENGTH"; do
  i=$((i + 1)); seed ciphers "s$i" "$(printf '\002')$s"
done
# flight: a TLS 1.2 ServerHello + ServerHelloDone, a TLS 1.3 one, an alert,
# an SSLv2 ERROR, an HTTP answer
seed_bytes flight sh12 '\026\003\003\000\056\002\000\000\046\003\003RRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRR\000\300\057\000\016\000\000\000'
seed_bytes flight sh13 '\026\003\003\000\062\002\000\000\056\003\003RRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRR\000\023\001\000\000\006\000\053\000\002\003\004'
seed_bytes flight alert '\025\003\003\000\002\002\050'
seed_bytes flight sslv2 '\200\003\000\000\001'
# records: a heartbeat request and a fatal alert; a heartbeat answer's head
seed_bytes records beat '\030\003\003\000\003\001\100\000\025\003\003\000\002\002\024'
seed_bytes records answer '\030\003\003\100\000\002\100\000'
seed flight http "HTTP/1.1 400 Bad Request"
seed_bytes hello h1 '\377\005\004\003\000\057\001\004\002\000\001\010example.com'
seed_bytes hello h2 '\007\000\003\000\000\000\002\000\001'
seed merge m1 "$(printf '\003\002\001\000\007\004\003')"
seed merge m2 "$(head -c 64 /dev/urandom | od -An -tx1 | tr -d ' \n')"
dir=$(mktemp -d)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=example.com \
  -keyout "$dir/k" -out "$dir/c" 2>/dev/null
openssl x509 -in "$dir/c" -outform DER -out "fuzz/corpus/chain/der" 2>/dev/null || {
  mkdir -p fuzz/corpus/chain; openssl x509 -in "$dir/c" -outform DER -out "fuzz/corpus/chain/der"; }
cp "$dir/c" fuzz/corpus/chain/pem
mkdir -p fuzz/corpus/keys fuzz/out
cp "$dir/k" fuzz/corpus/keys/ec-pkcs8
cp "$dir/c" fuzz/out/keys-cert.pem    # the keys target pairs keys with it
openssl pkey -in "$dir/k" -traditional -out fuzz/corpus/keys/ec-sec1 2>/dev/null || true
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out fuzz/corpus/keys/rsa-pkcs8 2>/dev/null
openssl genpkey -algorithm ED25519 -out fuzz/corpus/keys/ed25519 2>/dev/null
rm -rf "$dir"
seed prosody_config c1 "$(cat examples/prosody.cfg.lua)"
seed prosody_config c2 'VirtualHost "a.test"
  ssl = { protocol = "tlsv1+" }
Component "c.a.test" "muc"
x = ENV_HOME'
# DNS: responses of a local dnsmasq (SRV with compression and additional
# addresses, TLSA, TXT, NXDOMAIN), written from hex; and a name for queries.
hexseed() { # hexseed TARGET NAME HEX
  mkdir -p "fuzz/corpus/$1"
  printf '%s' "$3" | sed 's/../\\x&/g' | xargs -0 printf '%b' > "fuzz/corpus/$1/$2"
}
hexseed dns srv 004d858000010002000000030c5f786d70702d636c69656e74045f746370076578616d706c6504746573740000210001c00c0021000100000000001a0005000a146605786d707031076578616d706c65047465737400c00c0021000100000000001a00050014146705786d707032076578616d706c65047465737400c042001c000100000000001000000000000000000000000000000001c042000100010000000000047f00000100002904d0000000000000
hexseed dns tlsa 004d85800001000100000001055f35323232045f74637005786d707031076578616d706c6504746573740000340001c00c00340001000000000006030101abcdef00002904d0000000000000
hexseed dns txt 004d858000010001000000010174076578616d706c6504746573740000100001c00c0010000100000000000c0568656c6c6f05776f726c6400002904d0000000000000
hexseed dns nxdomain 004d81830001000000000001046e6f7065076578616d706c650474657374000001000100002904d0000000000000
printf '_xmpps-client._tcp.example.org\000SRV' > fuzz/corpus/dns/query
# client_hello: the recorded hellos of real clients (lua/tlsharden/clients/),
# one of them cut after 100 bytes, and an HTTP request
for f in lua/tlsharden/clients/*.hello; do
  [ -f "$f" ] || continue
  hexseed client_hello "$(basename "$f" .hello)" "$(sed -n 's/^hello: *//p' "$f" | tr -d ' \n')"
done
hexseed client_hello cut "$(sed -n 's/^hello: *//p' lua/tlsharden/clients/openssl-c2s-direct.hello | tr -d ' \n' | cut -c1-200)"
seed client_hello http "GET / HTTP/1.1"
mkdir -p fuzz/corpus/dane
cp fuzz/corpus/chain/der fuzz/corpus/dane/der
seed xmpp features "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback><compression xmlns='http://jabber.org/features/compress'><method>zlib</method></compression></stream:features><proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
seed xmpp error "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>no</text></stream:error></stream:stream>"
seed xmpp http "HTTP/1.1 400 Bad Request"
