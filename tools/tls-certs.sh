#!/bin/bash
# tools/tls-certs.sh DIR [EXTRA_IP...]: throw-away certificates for an etcd on this host
# (the demo, the benchmarks and the cluster tests), made with openssl, valid one day:
#   ca.pem                          the CA etcd and the nodes trust
#   server.pem, server-key.pem      etcd's certificate, for 127.0.0.1 and each EXTRA_IP
#   client.pem, client-key.pem      a node's client certificate, signed by ca.pem
#   other-client.pem, other-client-key.pem  a client certificate from another CA (not trusted)
# Client certificates carry no CommonName: with auth on, etcd's JSON gateway refuses one that has.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: tools/tls-certs.sh DIR [EXTRA_IP...]" >&2; exit 2; }
d=$1 san="IP:127.0.0.1"
shift
for ip in "$@"; do san="$san,IP:$ip"; done
mkdir -p "$d"
cd "$d"
key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; }
for ca in ca other-ca; do
  key "$ca-key.pem"
  openssl req -x509 -new -key "$ca-key.pem" -subj "/CN=bivy-test-$ca" -days 1 -out "$ca.pem" 2>/dev/null
done
echo "subjectAltName=$san" >server.ext
echo "extendedKeyUsage=clientAuth" >client.ext
cp client.ext other-client.ext
for n in server client other-client; do
  key "$n-key.pem"
  subj="/O=bivy-$n" ca=ca
  [ "$n" = server ] && subj="/CN=bivy-$n"
  [ "$n" = other-client ] && ca=other-ca
  openssl req -new -key "$n-key.pem" -subj "$subj" -out "$n.csr" 2>/dev/null
  openssl x509 -req -in "$n.csr" -CA "$ca.pem" -CAkey "$ca-key.pem" -CAcreateserial -days 1 -extfile "$n.ext" -out "$n.pem" 2>/dev/null
done
[ -s server.pem ] && [ -s client.pem ] && [ -s other-client.pem ]
