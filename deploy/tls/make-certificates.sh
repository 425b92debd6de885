#!/usr/bin/env bash
# Makes a private CA, a server certificate for HOST and one client certificate, for trying
# lumbung's TLS and client-certificate check. In production use your organisation's CA.
#
#   deploy/tls/make-certificates.sh DIR HOST [CLIENT_NAME]
#
# Then, in lumbung.toml:
#   [server]
#   listen = "0.0.0.0:50051"
#   tokens_file = "/etc/lumbung/tokens.toml"
#   tls_cert_file = "DIR/server.pem"
#   tls_key_file = "DIR/server.key"
#   tls_client_ca_file = "DIR/ca.pem"      # only if clients must present a certificate
# and call it with
#   lumbung status --addr https://HOST:50051 --tls-ca DIR/ca.pem \
#       --tls-cert DIR/client.pem --tls-key DIR/client.key --token ...
set -euo pipefail

dir=${1:?usage: make-certificates.sh DIR HOST [CLIENT_NAME]}
host=${2:?usage: make-certificates.sh DIR HOST [CLIENT_NAME]}
client=${3:-lumbung-client}
days=825
mkdir -p "$dir"
cd "$dir"
umask 077

openssl req -x509 -newkey rsa:3072 -nodes -days "$days" -subj "/CN=lumbung trial CA" \
    -keyout ca.key -out ca.pem 2>/dev/null

# The host goes in subjectAltName: rustls ignores the common name.
if [[ $host =~ ^[0-9.]+$ || $host == *:* ]]; then san="IP:$host"; else san="DNS:$host"; fi
openssl req -newkey rsa:3072 -nodes -subj "/CN=$host" -keyout server.key -out server.csr 2>/dev/null
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days "$days" \
    -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san") \
    -out server.pem 2>/dev/null

openssl req -newkey rsa:3072 -nodes -subj "/CN=$client" -keyout client.key -out client.csr 2>/dev/null
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days "$days" \
    -extfile <(printf 'extendedKeyUsage=clientAuth\n') -out client.pem 2>/dev/null

rm -f server.csr client.csr ca.srl
chmod 644 ca.pem server.pem client.pem
echo "in $dir: ca.pem (give to clients), server.pem + server.key (the service), client.pem + client.key ($client)"
