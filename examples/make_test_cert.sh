#!/bin/sh
# make_test_cert.sh [dir]: makes a throwaway CA and a certificate for localhost/127.0.0.1
# signed by it, for tls_echo_server and tls_echo_client. Never use these for anything real.
#   examples/make_test_cert.sh /tmp/torsion-certs
#   ./tls_echo_server 8443 /tmp/torsion-certs/server.pem /tmp/torsion-certs/server.key
#   ./tls_echo_client localhost 8443 /tmp/torsion-certs/ca.pem
set -eu
dir=${1:-./torsion-test-certs}
mkdir -p "$dir"
cd "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj "/CN=torsion throwaway CA" -keyout ca.key -out ca.pem \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
  -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
  -extfile server.ext -out server.pem 2>/dev/null
rm -f server.csr server.ext ca.srl
echo "made $dir/ca.pem, $dir/server.pem, $dir/server.key"
