// tls_echo_client: sends one message over TLS, prints the echo, closes with close_notify.
//   ./tls_echo_client localhost 8443 /tmp/torsion-certs/ca.pem ["message"]
// The server's certificate is verified against the CA file; there is deliberately no
// switch here to turn verification off.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "examples/cli.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "transports/tls.hpp"

namespace {

class Once final : public torsion::Protocol {
 public:
  explicit Once(std::string message) : message_(std::move(message)) {}
  void connection_made() override { transport().write(message_); }
  void data_received(std::string_view data) override {
    received_.append(data);
    if (received_.size() >= message_.size()) {
      std::printf("echoed: %s\n", received_.c_str());
      transport().lose_connection();
    }
  }

 private:
  std::string message_;
  std::string received_;
};

class Client final : public torsion::ClientFactory {
 public:
  Client(torsion::Reactor& reactor, std::string message)
      : reactor_(reactor), message_(std::move(message)) {}
  int status = 0;
  std::unique_ptr<torsion::Protocol> build_protocol(const torsion::Address&) override {
    return std::make_unique<Once>(message_);
  }
  void client_connection_failed(torsion::Connector&, const torsion::Reason& reason) override {
    std::fprintf(stderr, "failed: %s\n", reason.message().c_str());
    status = 1;
    reactor_.stop();
  }
  void client_connection_lost(torsion::Connector&, const torsion::Reason& reason) override {
    if (!reason.clean()) {
      std::fprintf(stderr, "lost: %s\n", reason.message().c_str());
      status = 1;
    }
    reactor_.stop();
  }

 private:
  torsion::Reactor& reactor_;
  std::string message_;
};

}  // namespace

int example_main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s host port ca.pem [message]\n", argv[0]);
    return 2;
  }
  torsion::TlsClientOptions options;
  options.ca_file = argv[3];
  options.alpn = {"echo"};
  torsion::TlsClientContext context(options);
  torsion::Reactor reactor;
  Client client(reactor, argc > 4 ? argv[4] : "hello over TLS");
  auto connector = torsion::connect_ssl(reactor, argv[1], torsion::examples::port_arg(argv[2], 1), client, context);
  reactor.run();
  return client.status;
}

int main(int argc, char** argv) {
  return torsion::examples::run_main(argc, argv, example_main);
}
