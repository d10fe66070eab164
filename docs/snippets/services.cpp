// docs/protocols-and-factories.md: connect_protocol, a proxy with RelayFactory, and an
// application made of services.
#include "transports/services.hpp"

#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "docs/snippets/snippets.hpp"
#include "framework/log.hpp"
#include "framework/protocol.hpp"
#include "framework/service.hpp"
#include "framework/stream.hpp"
#include "protocols/relay.hpp"
#include "transports/endpoints.hpp"

namespace docs {
namespace {

class Echo : public torsion::Protocol {
 public:
  void data_received(std::string_view data) override { transport().write(data); }
};

// Collects what it hears.
class Listener : public torsion::Protocol {
 public:
  void data_received(std::string_view data) override { heard.append(data); }
  std::string heard;
};

// [snippet:proxy]
// A proxy: every connection made to `listen` ("tcp:8080") is relayed to `upstream`
// ("tcp:example.com:80", "unix:/run/app.sock", "tls:..."), with back-pressure both ways
// (a slow reader on one side pauses reading on the other), half-closes passed on, and
// memory per connection bounded. It listens until SIGINT or SIGTERM.
std::shared_ptr<torsion::ListenService> proxy(torsion::Reactor& reactor, std::string_view listen,
                                              std::string_view upstream) {
  auto relay =
      std::make_shared<torsion::RelayFactory>(torsion::protocol_connector(reactor, upstream));
  auto service =
      std::make_shared<torsion::ListenService>(torsion::server_from_string(reactor, listen), relay);
  torsion::start_application(reactor, service);  // listens now
  return service;
}
// [end]

}  // namespace

std::string hello_with_connect_protocol(torsion::Reactor& reactor) {
  auto echo = torsion::make_factory<Echo>();
  auto port = torsion::server_from_string(reactor, "tcp:0:interface=127.0.0.1")->listen(echo);
  const std::string where = "tcp:127.0.0.1:" + std::to_string(port->port());
  Listener* connected = nullptr;
  // [snippet:connect-protocol]
  torsion::connect_protocol(reactor, where, std::make_unique<Listener>())
      .add_callback([&](Listener& listener) {  // after its connection_made
        listener.transport().write("hello");
        connected = &listener;  // valid until its connection_lost
      })
      .add_errback([](std::exception_ptr e) {  // ConnectionError: refused, timed out...
        torsion::log(torsion::LogLevel::error, torsion::describe_error(e));
      });
  // [end]
  reactor.run_until([&] { return connected && connected->heard.size() == 5; }, 10);
  std::string answer = connected ? connected->heard : "";
  if (connected) connected->transport().lose_connection();
  return answer;
}

std::string through_a_proxy(torsion::Reactor& reactor) {
  auto echo = torsion::make_factory<Echo>();
  auto origin = torsion::server_from_string(reactor, "tcp:0:interface=127.0.0.1")->listen(echo);
  auto front = proxy(reactor, "tcp:0:interface=127.0.0.1",
                     "tcp:127.0.0.1:" + std::to_string(origin->port()));
  Listener* client = nullptr;
  torsion::connect_protocol(reactor, "tcp:127.0.0.1:" + std::to_string(front->port()->port()),
                            std::make_unique<Listener>())
      .add_callback([&](Listener& l) {
        l.transport().write("through");
        client = &l;
      });
  reactor.run_until([&] { return client && client->heard.size() == 7; }, 10);
  std::string heard = client ? client->heard : "";
  if (client) client->transport().lose_connection();
  (void)front->stop_service();
  return heard;
}

std::vector<std::string> an_application(torsion::Reactor& reactor) {
  reactor.set_handle_signals(false);
  auto echo = torsion::make_factory<Echo>();
  auto upstream_port =
      torsion::server_from_string(reactor, "tcp:0:interface=127.0.0.1")->listen(echo);
  const std::string upstream = "tcp:127.0.0.1:" + std::to_string(upstream_port->port());
  std::vector<std::string> seen;
  // [snippet:application]
  auto listeners = torsion::make_factory<Listener>();
  auto app = std::make_shared<torsion::MultiService>();
  app->add_service(std::make_shared<torsion::ListenService>(reactor, "tcp:0:interface=127.0.0.1",
                                                            echo));  // a server of our own
  auto& client = app->add_service(std::make_shared<torsion::ClientService>(
      reactor, upstream, listeners));        // a connection kept up, with backoff
  torsion::start_application(reactor, app);  // starts both now, in order
  client.when_connected().add_callback(
      [](torsion::Protocol* p) { p->transport().write("hello upstream"); });
  // SIGINT, SIGTERM or reactor.shutdown() stops the client (closing its connection), then
  // the server (no more accepts), before the reactor drains the connections left.
  // [end]
  client.when_connected().add_callback([&](torsion::Protocol*) {
    seen.push_back("connected");
    reactor.shutdown();
  });
  reactor.run();
  seen.push_back(app->running() ? "running" : "stopped");
  seen.push_back(std::to_string(reactor.connection_count()));
  return seen;
}

}  // namespace docs
