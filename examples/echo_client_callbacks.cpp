// The echo client written with callbacks: a Protocol subclass and a ClientFactory, as
// in Twisted's classic style.
//
//   echo_client_callbacks [host port] [message]
//
// Without host and port it starts its own echo server. Way 1 of "Three ways to write
// the same client".
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "examples/cli.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "transports/tcp.hpp"

using namespace torsion;

// --- the client ---------------------------------------------------------------------------
class EchoClient : public Protocol {
 public:
  EchoClient(std::string message, std::string& reply) : message_(std::move(message)), reply_(reply) {}
  void connection_made() override { transport().write(message_); }
  void data_received(std::string_view data) override {
    reply_.append(data);
    if (reply_.size() >= message_.size()) transport().lose_connection();
  }

 private:
  std::string message_;
  std::string& reply_;
};

class EchoClientFactory : public ClientFactory {
 public:
  EchoClientFactory(Reactor& reactor, std::string message)
      : reactor_(reactor), message_(std::move(message)) {}
  std::unique_ptr<Protocol> build_protocol(const Address&) override {
    return std::make_unique<EchoClient>(message_, reply);
  }
  void client_connection_failed(Connector&, const Reason& reason) override {
    std::fprintf(stderr, "failed: %s\n", reason.message().c_str());
    reactor_.shutdown();
  }
  void client_connection_lost(Connector&, const Reason&) override {
    std::printf("echoed: %s\n", reply.c_str());
    ok = reply == message_;
    reactor_.shutdown();
  }
  std::string reply;
  bool ok = false;

 private:
  Reactor& reactor_;
  std::string message_;
};

// --- a local echo server, for running the example alone -----------------------------------
class Echo : public Protocol {
  void data_received(std::string_view data) override { transport().write(data); }
};

int example_main(int argc, char** argv) {
  Reactor reactor;
  std::string host = "127.0.0.1";
  int port = 0;
  std::string message = "hello, torsion";
  auto echo_factory = make_factory<Echo>();
  std::shared_ptr<ListeningPort> local;
  if (argc >= 3) {
    host = argv[1];
    port = torsion::examples::port_arg(argv[2], 1);
    if (argc >= 4) message = argv[3];
  } else {
    TcpListenOptions options;
    options.interface = "127.0.0.1";
    local = listen_tcp(reactor, 0, echo_factory, options);
    port = local->port();
  }

  EchoClientFactory client(reactor, message);
  connect_tcp(reactor, host, port, client);
  reactor.run();
  return client.ok ? 0 : 1;
}

int main(int argc, char** argv) {
  return torsion::examples::run_main(argc, argv, example_main);
}
