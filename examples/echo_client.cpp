// echo_client HOST PORT MESSAGE: sends MESSAGE, prints what comes back, then stops.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "examples/cli.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "transports/tcp.hpp"

namespace {

class EchoClient : public torsion::Protocol {
 public:
  explicit EchoClient(std::string message) : message_(std::move(message)) {}
  void connection_made() override { transport().write(message_); }
  void data_received(std::string_view data) override {
    received_.append(data);
    if (received_.size() >= message_.size()) transport().lose_connection();
  }
  void connection_lost(const torsion::Reason&) override { std::printf("%s\n", received_.c_str()); }

 private:
  std::string message_;
  std::string received_;
};

class Factory : public torsion::ClientFactory {
 public:
  Factory(torsion::Reactor& reactor, std::string message)
      : reactor_(reactor), message_(std::move(message)) {}
  std::unique_ptr<torsion::Protocol> build_protocol(const torsion::Address&) override {
    return std::make_unique<EchoClient>(message_);
  }
  void client_connection_failed(torsion::Connector&, const torsion::Reason& reason) override {
    std::fprintf(stderr, "connection failed: %s\n", reason.message().c_str());
    status = 1;
    reactor_.stop();
  }
  void client_connection_lost(torsion::Connector&, const torsion::Reason& reason) override {
    if (!reason.clean()) {
      std::fprintf(stderr, "connection ended: %s\n", reason.message().c_str());
      status = 1;
    }
    reactor_.stop();
  }
  int status = 0;

 private:
  torsion::Reactor& reactor_;
  std::string message_;
};

}  // namespace

int example_main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s HOST PORT MESSAGE\n", argv[0]);
    return 2;
  }
  torsion::Reactor reactor;
  Factory factory(reactor, argv[3]);
  torsion::connect_tcp(reactor, argv[1], torsion::examples::port_arg(argv[2], 1), factory);
  reactor.run();
  return factory.status;
}

int main(int argc, char** argv) {
  return torsion::examples::run_main(argc, argv, example_main);
}
