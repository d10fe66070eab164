#pragma once
// Test helper: makes a throwaway CA and certificates at test time with the OpenSSL API
// and writes them as PEM files into a private temporary directory.

#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "transports/tls.hpp"

namespace torsion::test {

struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CertFree {
  void operator()(X509* c) const { X509_free(c); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;
using Cert = std::unique_ptr<X509, CertFree>;

inline Key make_key() {
  Key key(EVP_EC_gen("P-256"));
  REQUIRE(key);
  return key;
}

inline void add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  REQUIRE(ext != nullptr);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A certificate for `cn` valid from now+from_days to now+to_days, signed by issuer (or
// self-signed when issuer is null). `san` is e.g. "DNS:localhost,IP:127.0.0.1".
inline Cert make_cert(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key,
                      const std::string& san, long from_days, long to_days, bool ca,
                      long serial) {
  Cert cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), from_days * 86400);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), to_days * 86400);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* signer = issuer ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  if (ca) {
    add_extension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    add_extension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_extension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    add_extension(cert.get(), signer, NID_ext_key_usage, "serverAuth,clientAuth");
    if (!san.empty()) add_extension(cert.get(), signer, NID_subject_alt_name, san);
  }
  add_extension(cert.get(), signer, NID_subject_key_identifier, "hash");
  REQUIRE(X509_sign(cert.get(), issuer_key ? issuer_key : key, EVP_sha256()) > 0);
  return cert;
}

inline void write_cert(const std::string& path, X509* cert) {
  FILE* f = std::fopen(path.c_str(), "w");
  REQUIRE(f != nullptr);
  PEM_write_X509(f, cert);
  std::fclose(f);
}

inline void write_key(const std::string& path, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "w");
  REQUIRE(f != nullptr);
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
}

// A CA, a server certificate for localhost/127.0.0.1 it signed, an expired one, a client
// certificate (CN "torsion client") it signed, and a second, unrelated CA with its own
// certificate (usable by a server or a client).
struct TestPki {
  std::string dir;
  std::string ca_file, cert_file, key_file;
  std::string expired_cert_file, expired_key_file;
  std::string stranger_cert_file, stranger_key_file;
  std::string client_cert_file, client_key_file;
  std::string other_cert_file, other_key_file;  // CN and DNS name "other.test"

  TestPki() {
    char tmpl[] = "/tmp/torsion-tls-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    ca_file = dir + "/ca.pem";
    cert_file = dir + "/server.pem";
    key_file = dir + "/server.key";
    expired_cert_file = dir + "/expired.pem";
    expired_key_file = dir + "/expired.key";
    stranger_cert_file = dir + "/stranger.pem";
    stranger_key_file = dir + "/stranger.key";
    client_cert_file = dir + "/client.pem";
    client_key_file = dir + "/client.key";
    other_cert_file = dir + "/other.pem";
    other_key_file = dir + "/other.key";

    const Key ca_key = make_key();
    const Cert ca = make_cert(ca_key.get(), "torsion test CA", nullptr, nullptr, "", -1, 30, true, 1);
    write_cert(ca_file, ca.get());

    const Key key = make_key();
    const Cert cert = make_cert(key.get(), "localhost", ca.get(), ca_key.get(),
                                "DNS:localhost,IP:127.0.0.1", -1, 30, false, 2);
    write_cert(cert_file, cert.get());
    write_key(key_file, key.get());

    const Key old_key = make_key();
    const Cert old = make_cert(old_key.get(), "localhost", ca.get(), ca_key.get(),
                               "DNS:localhost,IP:127.0.0.1", -30, -1, false, 3);
    write_cert(expired_cert_file, old.get());
    write_key(expired_key_file, old_key.get());

    const Key c_key = make_key();
    const Cert c = make_cert(c_key.get(), "torsion client", ca.get(), ca_key.get(), "", -1, 30,
                             false, 6);
    write_cert(client_cert_file, c.get());
    write_key(client_key_file, c_key.get());

    const Key o_key = make_key();
    const Cert o = make_cert(o_key.get(), "other.test", ca.get(), ca_key.get(), "DNS:other.test",
                             -1, 30, false, 7);
    write_cert(other_cert_file, o.get());
    write_key(other_key_file, o_key.get());

    const Key other_ca_key = make_key();
    const Cert other_ca = make_cert(other_ca_key.get(), "stranger CA", nullptr, nullptr, "", -1, 30, true, 4);
    const Key s_key = make_key();
    const Cert s = make_cert(s_key.get(), "localhost", other_ca.get(), other_ca_key.get(),
                             "DNS:localhost,IP:127.0.0.1", -1, 30, false, 5);
    write_cert(stranger_cert_file, s.get());
    write_key(stranger_key_file, s_key.get());
  }
  ~TestPki() { std::system(("rm -rf '" + dir + "'").c_str()); }
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;
};

// Server options that present the PKI's server certificate.
inline TlsServerOptions server_options(const TestPki& pki) {
  TlsServerOptions o;
  o.certificate_chain_file = pki.cert_file;
  o.private_key_file = pki.key_file;
  return o;
}

// Client options that trust the PKI's CA.
inline TlsClientOptions client_options(const TestPki& pki) {
  TlsClientOptions o;
  o.ca_file = pki.ca_file;
  return o;
}

}  // namespace torsion::test
