// An echo server and a client in one process, both made from endpoint strings.
#include <cstdio>
#include <cstring>
#include <string>

#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "framework/testing/string_transport.hpp"
#include "framework/version.hpp"
#include "transports/endpoints.hpp"

namespace {

struct Echo : torsion::Protocol {
  void data_received(std::string_view data) override { transport().write(data); }
};

class Hello : public torsion::Protocol {
 public:
  explicit Hello(std::string& got) : got_(got) {}
  void connection_made() override { transport().write("hello"); }
  void data_received(std::string_view data) override {
    got_.append(data);
    if (got_.size() >= 5) transport().lose_connection();
  }

 private:
  std::string& got_;
};

class HelloFactory : public torsion::ClientFactory {
 public:
  HelloFactory(torsion::Reactor& reactor, std::string& got) : reactor_(reactor), got_(got) {}
  std::unique_ptr<torsion::Protocol> build_protocol(const torsion::Address&) override {
    return std::make_unique<Hello>(got_);
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
};

}  // namespace

int main() {
  if (std::strcmp(torsion::version(), TORSION_VERSION_STRING) != 0) {
    std::fprintf(stderr, "header %s, library %s\n", TORSION_VERSION_STRING, torsion::version());
    return 1;
  }
  // The testing toolkit is installed too.
  torsion::testing::StringTransport fake;
  Echo probe;
  fake.connect(probe);
  probe.data_received("x");
  if (fake.value() != "x") return 1;

  torsion::Reactor reactor;
  auto echo = torsion::make_factory<Echo>();
  auto port = torsion::server_from_string(reactor, "tcp:0:interface=127.0.0.1")->listen(echo);
  std::string got;
  HelloFactory factory(reactor, got);
  auto client = torsion::client_from_string(
      reactor, "tcp:127.0.0.1:" + std::to_string(port->port()) + ":timeout=10");
  auto connector = client->connect(factory);
  reactor.run_until([&] { return got.size() >= 5 && reactor.connection_count() == 0; }, 20);
  if (got != "hello") {
    std::fprintf(stderr, "echo: got '%s'\n", got.c_str());
    return 1;
  }
  std::printf("consumer ok, torsion %s\n", TORSION_VERSION_STRING);
  return 0;
}
