#include "transports/endpoints.hpp"

#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <string>

#include "framework/task.hpp"
#include "tests/support/endpoint_error.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/wait.hpp"

using namespace torsion;
using torsion::test::error_of;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::RecordingFactory;
using torsion::test::wait_for;

TEST_CASE("tcp endpoints from strings: echo round trip") {
  Reactor reactor;
  RecordingFactory server;
  server.setup = [](Record& r) {
    r.on_data = [](Record& rr, std::string_view d) { rr.transport->write(d); };
  };
  auto server_endpoint = server_from_string(reactor, "tcp:0:interface=127.0.0.1:backlog=16");
  CHECK(server_endpoint->description() == "tcp:0:interface=127.0.0.1:backlog=16");
  auto port = server_endpoint->listen(server);
  REQUIRE(port);
  CHECK(port->get_host().host() == "127.0.0.1");

  RecordingClientFactory client;
  client.setup = [](Record& r) {
    r.on_made = [](Record& rr) { rr.transport->write("ping"); };
    r.on_data = [](Record& rr, std::string_view) {
      if (rr.received.size() == 4) rr.transport->lose_connection();
    };
  };
  auto client_endpoint = client_from_string(
      reactor, "tcp:host=127.0.0.1:port=" + std::to_string(port->port()) + ":timeout=5");
  CHECK(client_endpoint->description() ==
        "tcp:host=127.0.0.1:port=" + std::to_string(port->port()) + ":timeout=5");
  auto connector = client_endpoint->connect(client);
  wait_for(reactor, [&] { return client.lost == 1; }, "the client to finish");
  REQUIRE(client.records.size() == 1);
  CHECK(client.records[0].received == "ping");
  CHECK(client.failed == 0);
  port->stop_listening();
  wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "every connection to close");
}

TEST_CASE("tcp client endpoint: positional host and port") {
  Reactor reactor;
  RecordingFactory server;
  auto port = server_from_string(reactor, "tcp:port=0:interface=127.0.0.1")->listen(server);
  RecordingClientFactory client;
  client.setup = [](Record& r) { r.on_made = [](Record& rr) { rr.transport->lose_connection(); }; };
  client_from_string(reactor, "tcp:127.0.0.1:" + std::to_string(port->port()))->connect(client);
  wait_for(reactor, [&] { return client.lost == 1; }, "the client to connect and close");
  CHECK(client.records.size() == 1);
  port->stop_listening();
  wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "every connection to close");
}

TEST_CASE("a refused tcp endpoint fails through the factory") {
  Reactor reactor;
  RecordingFactory server;
  auto port = server_from_string(reactor, "tcp:0:interface=127.0.0.1")->listen(server);
  const auto number = port->port();
  port->stop_listening();
  RecordingClientFactory client;
  client_from_string(reactor, "tcp:127.0.0.1:" + std::to_string(number))->connect(client);
  wait_for(reactor, [&] { return client.failed == 1; }, "the connection to be refused");
  CHECK(client.records.empty());
}

TEST_CASE("a server endpoint that cannot bind throws system_error naming it, or sets ec") {
  Reactor reactor;
  RecordingFactory server;
  auto first = server_from_string(reactor, "tcp:0:interface=127.0.0.1")->listen(server);
  const std::string taken = "tcp:" + std::to_string(first->port()) + ":interface=127.0.0.1";
  auto endpoint = server_from_string(reactor, taken);
  try {
    (void)endpoint->listen(server);
    FAIL("expected std::system_error");
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::errc::address_in_use);
    CHECK(std::string(e.what()).find(taken) != std::string::npos);
  }
  std::error_code ec;
  CHECK(endpoint->listen(server, ec) == nullptr);
  CHECK(ec == std::errc::address_in_use);
}

TEST_CASE("bad tcp descriptions name the parameter and the value") {
  Reactor reactor;
  struct Case {
    const char* text;
    const char* parameter;
    const char* value;
  };
  SUBCASE("server") {
    for (auto c : {Case{"tcp:70000", "port", "70000"}, Case{"tcp:http", "port", "http"},
                   Case{"tcp:interface=127.0.0.1", "port", ""},
                   Case{"tcp:80:interface=localhost", "interface", "localhost"},
                   Case{"tcp:80:backlog=0", "backlog", "0"},
                   Case{"tcp:80:reuse_port=sometimes", "reuse_port", "sometimes"},
                   Case{"tcp:80:timeout=5", "timeout", "5"}, Case{"tcp:80:81", "argument 2", "81"},
                   Case{"tpc:80", "type", "tpc"}}) {
      CAPTURE(c.text);
      const auto e = error_of([&] { (void)server_from_string(reactor, c.text); });
      CHECK(e.parameter() == c.parameter);
      CHECK(e.value() == c.value);
      CHECK(std::string(e.what()).find(c.parameter) != std::string::npos);
    }
  }
  SUBCASE("client") {
    for (auto c : {Case{"tcp:host=example.com", "port", ""},
                   Case{"tcp:example.com:0", "port", "0"}, Case{"tcp:port=80", "host", ""},
                   Case{"tcp:example.com:80:timeout=-1", "timeout", "-1"},
                   Case{"tcp:example.com:80:timeout=soon", "timeout", "soon"},
                   Case{"tcp:example.com:80:bindAddress=x", "bindAddress", "x"}}) {
      CAPTURE(c.text);
      const auto e = error_of([&] { (void)client_from_string(reactor, c.text); });
      CHECK(e.parameter() == c.parameter);
      CHECK(e.value() == c.value);
    }
  }
  const auto unknown = error_of([&] { (void)client_from_string(reactor, "carrier-pigeon:x"); });
  // The list names every registered type ("ssl" may come first once TLS is registered).
  const std::string what = unknown.what();
  CHECK(what.find("(known: ") != std::string::npos);
  CHECK(what.find("tcp") != std::string::npos);
}

TEST_CASE("IPv6 interfaces are written with escaped colons") {
  Reactor reactor;
  auto endpoint = server_from_string(reactor, R"(tcp:8080:interface=\:\:1)");
  CHECK(endpoint->description() == R"(tcp:8080:interface=\:\:1:backlog=511)");
  // The canonical description parses back to the same thing.
  CHECK(server_from_string(reactor, endpoint->description())->description() ==
        endpoint->description());
}

TEST_CASE("registering a new endpoint type") {
  class Fixed final : public ServerEndpoint {
   public:
    explicit Fixed(std::string name) : name_(std::move(name)) {}
    using ServerEndpoint::listen;
    std::shared_ptr<ListeningPort> listen(Factory&, std::error_code& ec) override {
      ec = std::make_error_code(std::errc::operation_not_supported);
      return nullptr;
    }
    std::string description() const override { return "test-fixed:" + name_; }

   private:
    std::string name_;
  };
  register_server_endpoint("test-fixed", [](Reactor&, EndpointDescription& d) {
    d.name_positional({"name"});
    d.check_known({"name"});
    return std::make_unique<Fixed>(d.required("name"));
  });
  const auto types = server_endpoint_types();
  CHECK(std::find(types.begin(), types.end(), "test-fixed") != types.end());
  CHECK(std::find(types.begin(), types.end(), "tcp") != types.end());
  Reactor reactor;
  auto endpoint = server_from_string(reactor, R"(test-fixed:a\:b)");
  CHECK(endpoint->description() == "test-fixed:a:b");
  RecordingFactory factory;
  CHECK_THROWS_AS((void)endpoint->listen(factory), std::system_error);
  CHECK(error_of([&] { (void)server_from_string(reactor, "test-fixed:a:b"); }).parameter() ==
        "argument 2");
  CHECK_THROWS_AS(register_server_endpoint("bad:name", {}), std::invalid_argument);
  CHECK_THROWS_AS(register_client_endpoint("ok", {}), std::invalid_argument);
  const auto clients = client_endpoint_types();
  CHECK(std::find(clients.begin(), clients.end(), "test-fixed") == clients.end());
}

TEST_CASE("unix endpoints from strings: echo over an abstract socket") {
  Reactor reactor;
  RecordingFactory server;
  server.setup = [](Record& r) {
    r.on_data = [](Record& rr, std::string_view d) { rr.transport->write(d); };
  };
  const std::string name = "@torsion-endpoints-test-" + std::to_string(::getpid());
  auto server_endpoint = server_from_string(reactor, "unix:" + name + ":backlog=8");
  CHECK(server_endpoint->description() == "unix:" + name + ":backlog=8:remove_stale=true");
  auto port = server_endpoint->listen(server);
  RecordingClientFactory client;
  client.setup = [](Record& r) {
    r.on_made = [](Record& rr) { rr.transport->write("over unix"); };
    r.on_data = [](Record& rr, std::string_view) {
      if (rr.received.size() == 9) rr.transport->lose_connection();
    };
  };
  auto client_endpoint = client_from_string(reactor, "unix:path=" + name + ":timeout=5");
  CHECK(client_endpoint->description() == "unix:" + name + ":timeout=5");
  auto connector = client_endpoint->connect(client);
  wait_for(reactor, [&] { return client.lost == 1; }, "the unix client to finish");
  REQUIRE(client.records.size() == 1);
  CHECK(client.records[0].received == "over unix");
  port->stop_listening();
  wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "every connection to close");
}

TEST_CASE("unix endpoint: mode is octal, paths are bounded") {
  Reactor reactor;
  CHECK(server_from_string(reactor, "unix:/tmp/x.sock:mode=660")->description() ==
        "unix:/tmp/x.sock:mode=660:backlog=511:remove_stale=true");
  CHECK(server_from_string(reactor, R"(unix:/tmp/a\:b.sock:mode=0600)")->description() ==
        R"(unix:/tmp/a\:b.sock:mode=600:backlog=511:remove_stale=true)");
  struct Case {
    std::string text;
    const char* parameter;
  };
  for (const auto& c : {Case{"unix:/tmp/x:mode=999", "mode"}, Case{"unix:/tmp/x:mode=rw", "mode"},
                        Case{"unix:/tmp/x:mode=", "mode"}, Case{"unix:/tmp/x:mode=77777", "mode"},
                        Case{"unix:mode=600", "path"}, Case{"unix:", "path"},
                        Case{"unix:/" + std::string(107, 'a'), "path"},
                        Case{"unix:/tmp/x:interface=1", "interface"}}) {
    CAPTURE(c.text);
    CHECK(error_of([&] { (void)server_from_string(reactor, c.text); }).parameter() == c.parameter);
  }
  CHECK(error_of([&] { (void)client_from_string(reactor, "unix:/tmp/x:mode=600"); }).parameter() ==
        "mode");
  CHECK_NOTHROW((void)server_from_string(reactor, "unix:/" + std::string(106, 'a')));
}

namespace {

Task<std::string> ask_through(Reactor& reactor, std::string description) {
  auto endpoint = client_from_string(reactor, description);
  Stream s = co_await connect_stream(reactor, *endpoint);
  s.write("question\n");
  auto line = co_await s.read_line(100);
  s.close();
  co_return line.value_or("<eof>");
}

}  // namespace

TEST_CASE("connect_stream through an endpoint: a coroutine over unix and over tcp") {
  Reactor reactor;
  RecordingFactory server;
  server.setup = [](Record& r) {
    r.on_data = [](Record& rr, std::string_view d) { rr.transport->write(d); };
  };
  const std::string name = "@torsion-endpoints-stream-" + std::to_string(::getpid());
  auto unix_port = server_from_string(reactor, "unix:" + name)->listen(server);
  auto tcp_port = server_from_string(reactor, "tcp:0:interface=127.0.0.1")->listen(server);
  std::vector<std::string> answers;
  for (const std::string& where :
       {"unix:" + name, "tcp:127.0.0.1:" + std::to_string(tcp_port->port())}) {
    ask_through(reactor, where).deferred().add_callback([&](std::string a) {
      answers.push_back(a);
    });
  }
  wait_for(reactor, [&] { return answers.size() == 2; }, "both answers");
  CHECK(answers == std::vector<std::string>{"question", "question"});
  unix_port->stop_listening();
  tcp_port->stop_listening();
  // Every connection closes and the reactor keeps running: the factories must outlive
  // client_connection_lost (ASan checks).
  wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "every connection to close");
}

TEST_CASE("connect_stream through an endpoint: refused, and cancelled") {
  Reactor reactor;
  RecordingFactory server;
  auto port = server_from_string(reactor, "tcp:0:interface=127.0.0.1")->listen(server);
  const auto number = port->port();
  port->stop_listening();
  auto endpoint = client_from_string(reactor, "tcp:127.0.0.1:" + std::to_string(number));
  std::string failure;
  connect_stream(reactor, *endpoint)
      .add_callback([](Stream) { return std::string("connected?"); })
      .catch_error<ConnectionError>([](const ConnectionError& e) {
        return std::string(e.reason().is(error::connection_refused) ? "refused" : "other");
      })
      .add_callback([&](std::string what) { failure = what; });
  wait_for(reactor, [&] { return !failure.empty(); }, "the refusal");
  CHECK(failure == "refused");

  auto live = server_from_string(reactor, "tcp:0:interface=127.0.0.1")->listen(server);
  auto live_endpoint = client_from_string(reactor, "tcp:127.0.0.1:" + std::to_string(live->port()));
  auto d = connect_stream(reactor, *live_endpoint);
  bool cancelled = false;
  d.catch_error<CancelledError>([&](const CancelledError&) {
    cancelled = true;
    return Stream();
  });
  d.cancel();
  CHECK(cancelled);  // the Deferred fails at once; the connector reports from the loop
  // The endpoint connects again after a cancel. (Waiting for that also lets the cancelled
  // attempt's report, queued first, run before the reactor goes away.)
  std::string again;
  connect_stream(reactor, *live_endpoint).add_callback([&](Stream s) {
    again = s ? "connected" : "empty";
    s.close();
  });
  wait_for(reactor, [&] { return !again.empty() && reactor.connection_count() == 0; },
           "a new connection after the cancel, then every connection to end");
  CHECK(again == "connected");
}
