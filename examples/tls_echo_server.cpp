// tls_echo_server: a TLS echo server.
//   examples/make_test_cert.sh /tmp/torsion-certs     (a throwaway CA and certificate)
//   ./tls_echo_server 8443 /tmp/torsion-certs/server.pem /tmp/torsion-certs/server.key
//   try: openssl s_client -connect 127.0.0.1:8443 -CAfile /tmp/torsion-certs/ca.pem
#include <cstdio>
#include <cstdlib>

#include "examples/cli.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "transports/tls.hpp"

namespace {

class Echo final : public torsion::Protocol {
 public:
  void connection_made() override {
    if (auto info = torsion::tls_info(transport()))
      std::printf("%s: %s %s\n", transport().get_peer().to_string().c_str(), info->version.c_str(),
                  info->cipher.c_str());
    std::fflush(stdout);
  }
  void data_received(std::string_view data) override { transport().write(data); }
};

}  // namespace

int example_main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s port certificate-chain.pem private-key.pem\n", argv[0]);
    return 2;
  }
  torsion::TlsServerOptions options;
  options.certificate_chain_file = argv[2];
  options.private_key_file = argv[3];
  options.alpn = {"echo"};
  torsion::TlsServerContext context(options);
  torsion::Reactor reactor;
  auto factory = torsion::make_factory<Echo>();
  auto port = torsion::listen_ssl(reactor, torsion::examples::port_arg(argv[1]), factory, context, "127.0.0.1");
  std::printf("TLS echo on %s\n", port->get_host().to_string().c_str());
  std::fflush(stdout);
  reactor.run();
  return 0;
}

int main(int argc, char** argv) {
  return torsion::examples::run_main(argc, argv, example_main);
}
