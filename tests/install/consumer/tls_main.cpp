// tls_consumer CERT_DIR: an echo over TLS in one process, both ends from ssl: endpoint
// strings, the server's certificate verified against CERT_DIR/ca.pem.
#include <cstdio>
#include <optional>
#include <string>

#include "framework/endpoints.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "transports/endpoints.hpp"
#include "transports/tls.hpp"
#include "transports/tls_endpoints.hpp"

namespace {

struct Echo : torsion::Protocol {
  void data_received(std::string_view data) override { transport().write(data); }
};

class Hello : public torsion::Protocol {
 public:
  Hello(std::string& got, std::string& version) : got_(got), version_(version) {}
  void connection_made() override {
    if (auto info = torsion::tls_info(transport())) version_ = info->version;
    transport().write("hello tls");
  }
  void data_received(std::string_view data) override {
    got_.append(data);
    if (got_.size() >= 9) transport().lose_connection();
  }

 private:
  std::string& got_;
  std::string& version_;
};

class HelloFactory : public torsion::ClientFactory {
 public:
  HelloFactory(torsion::Reactor& reactor, std::string& got, std::string& version)
      : reactor_(reactor), got_(got), version_(version) {}
  std::unique_ptr<torsion::Protocol> build_protocol(const torsion::Address&) override {
    return std::make_unique<Hello>(got_, version_);
  }
  void client_connection_failed(torsion::Connector&, const torsion::Reason& why) override {
    std::fprintf(stderr, "connect failed: %s\n", why.message().c_str());
    reactor_.stop();
  }
  void client_connection_lost(torsion::Connector&, const torsion::Reason&) override {
    reactor_.stop();
  }

 private:
  torsion::Reactor& reactor_;
  std::string& got_;
  std::string& version_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const std::string dir = argv[1];
  torsion::register_tls_endpoints();
  torsion::Reactor reactor;
  // A missing key file is refused when the description is parsed, naming the parameter.
  try {
    auto endpoint = torsion::server_from_string(reactor, "ssl:0:privateKey=" + dir + "/missing.key");
    std::fprintf(stderr, "a missing privateKey was accepted\n");
    return 1;
  } catch (const torsion::EndpointError& e) {
    if (std::string(e.what()).find("privateKey") == std::string::npos) {
      std::fprintf(stderr, "the error does not name privateKey: %s\n", e.what());
      return 1;
    }
  }
  auto echo = torsion::make_factory<Echo>();
  auto port = torsion::server_from_string(
      reactor, "ssl:0:privateKey=" + dir + "/server.key:certKey=" + dir +
                   "/server.pem:interface=127.0.0.1")->listen(echo);
  std::string got;
  std::string version;
  HelloFactory factory(reactor, got, version);
  auto client = torsion::client_from_string(
      reactor, "ssl:127.0.0.1:" + std::to_string(port->port()) + ":caCertsDir=" + dir +
                   "/ca.pem:hostname=localhost:timeout=10");
  auto connector = client->connect(factory);
  reactor.run_until([&] { return got.size() >= 9 && reactor.connection_count() == 0; }, 20);
  if (got != "hello tls" || version.rfind("TLS", 0) != 0) {
    std::fprintf(stderr, "tls echo: got '%s' over '%s'\n", got.c_str(), version.c_str());
    return 1;
  }
  std::printf("tls consumer ok, %s\n", version.c_str());
  return 0;
}
