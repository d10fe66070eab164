#include <cstdio>
#include <memory>

#include "docs/snippets/snippets.hpp"
#include "framework/protocol.hpp"
#include "transports/endpoints.hpp"

namespace docs {
namespace {

class Echo : public torsion::Protocol {
 public:
  void data_received(std::string_view data) override { transport().write(data); }
};

class Ping : public torsion::Protocol {
 public:
  explicit Ping(std::string& got) : got_(got) {}
  void connection_made() override { transport().write("ping"); }
  void data_received(std::string_view data) override {
    got_.append(data);
    if (got_.size() == 4) transport().lose_connection();
  }

 private:
  std::string& got_;
};

}  // namespace

std::string echo_through_endpoints(torsion::Reactor& reactor) {
  std::string got;
  auto echo = torsion::make_factory<Echo>();
  torsion::FunctionFactory<torsion::ClientFactory> ping(
      [&](const torsion::Address&) { return std::make_unique<Ping>(got); });
  // [snippet:from-string]
  auto server = torsion::server_from_string(reactor, "tcp:0:interface=127.0.0.1:backlog=128");
  auto port = server->listen(echo);  // throws std::system_error if it cannot bind

  const std::string where = "tcp:host=127.0.0.1:port=" + std::to_string(port->port()) +
                            ":timeout=5";
  auto client = torsion::client_from_string(reactor, where);
  auto connector = client->connect(ping);
  // [end]
  reactor.run_until([&] { return got.size() == 4 && reactor.connection_count() == 0; }, 10);
  return got;
}

std::string endpoint_error_message(torsion::Reactor& reactor) {
  std::string message;
  // [snippet:errors]
  try {
    auto endpoint = torsion::server_from_string(reactor, "tcp:8080:backlog=lots");
  } catch (const torsion::EndpointError& e) {
    // e.parameter() == "backlog", e.value() == "lots"; e.what() says it all:
    // endpoint 'tcp:8080:backlog=lots': parameter 'backlog' must be an integer in
    // 1..65535, got 'lots'
    message = e.what();
  }
  // [end]
  return message;
}

// [snippet:register]
// A "loopback:PORT" type meaning tcp on 127.0.0.1, built on the tcp endpoint.
void register_loopback_endpoint() {
  torsion::register_server_endpoint(
      "loopback", [](torsion::Reactor& reactor, torsion::EndpointDescription& d) {
        d.name_positional({"port"});
        d.check_known({"port"});  // anything else is an error naming the parameter
        const long port = d.required_integer("port", 0, 65535);
        return torsion::server_from_string(
            reactor, "tcp:" + std::to_string(port) + ":interface=127.0.0.1");
      });
}
// [end]

}  // namespace docs
