#include "transports/tcp.hpp"

#include <doctest/doctest.h>
#include <poll.h>

#include <asio/ip/tcp.hpp>

#include <ostream>
#include <stdexcept>
#include <string>

#include "framework/log.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/socket_probe.hpp"
#include "tests/support/wait.hpp"

using namespace torsion;
using torsion::test::loopback;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::RecordingFactory;
using torsion::test::wait_for;

namespace {

// A pattern that shows reordering or loss: byte i is a function of i.
std::string pattern(std::size_t size) {
  std::string s(size, '\0');
  for (std::size_t i = 0; i < size; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

}  // namespace

TEST_CASE("echo round trip") {
  Reactor reactor;
  RecordingFactory server;
  server.setup = [](Record& r) { r.on_data = [](Record& rr, std::string_view d) { rr.transport->write(d); }; };
  auto port = listen_tcp(reactor, 0, server, loopback());
  CHECK(port->port() != 0);
  CHECK(port->get_host().host() == "127.0.0.1");

  RecordingClientFactory client;
  client.setup = [](Record& r) {
    r.on_made = [](Record& rr) { rr.transport->write("hello, torsion"); };
    r.on_data = [](Record& rr, std::string_view) {
      if (rr.received.size() == 14) rr.transport->lose_connection();
    };
  };
  auto connector = connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return client.lost == 1 && !server.records.empty() && server.records[0].done(); },
           "both sides to close");
  CHECK(client.started == 1);
  CHECK(client.failed == 0);
  REQUIRE(client.records.size() == 1);
  CHECK(client.records[0].received == "hello, torsion");
  CHECK(client.records[0].reason->clean());
  CHECK(server.records[0].received == "hello, torsion");
  CHECK(server.records[0].reason->clean());  // the peer closed: a clean EOF
  CHECK(client.lost_reason->clean());
  CHECK(connector->get_destination().port() == port->port());
  port->stop_listening();
  CHECK_FALSE(port->listening());
  CHECK(reactor.connection_count() == 0);
}

TEST_CASE("addresses are reported on both sides") {
  Reactor reactor;
  RecordingFactory server;
  Address server_peer, server_host;
  server.setup = [&](Record& r) {
    r.on_made = [&](Record& rr) {
      server_peer = rr.transport->get_peer();
      server_host = rr.transport->get_host();
      rr.transport->lose_connection();
    };
  };
  auto port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory client;
  Address client_peer, client_host;
  client.setup = [&](Record& r) {
    r.on_made = [&](Record& rr) {
      client_peer = rr.transport->get_peer();
      client_host = rr.transport->get_host();
    };
  };
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return client.lost == 1; }, "the close");
  CHECK(client_peer == Address::ip("127.0.0.1", port->port()));
  CHECK(server_host == client_peer);
  CHECK(server_peer == client_host);
  CHECK(client_host.port() != 0);
}

TEST_CASE("a 16 MiB write then lose_connection arrives whole and in order") {
  Reactor reactor;
  const std::string payload = pattern(16 * 1024 * 1024);
  RecordingFactory server;
  std::size_t queued_after_write = 0;
  server.setup = [&](Record& r) {
    r.on_made = [&](Record& rr) {
      rr.transport->write(payload);
      queued_after_write = rr.transport->buffer_size();
      rr.transport->lose_connection();
      rr.transport->write("dropped: written after lose_connection");
    };
  };
  auto port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory client;
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return client.lost == 1 && server.records.size() == 1 && server.records[0].done(); },
           "the transfer to finish");
  CHECK(queued_after_write > 0);  // the kernel could not take 16 MiB at once
  REQUIRE(client.records.size() == 1);
  CHECK(client.records[0].received.size() == payload.size());
  CHECK(client.records[0].received == payload);
  CHECK(client.records[0].reason->clean());
  CHECK(server.records[0].reason->clean());
  CHECK(reactor.connection_count() == 0);
}

TEST_CASE("a moved-in large payload is sent whole") {
  Reactor reactor;
  const std::string payload = pattern(3 * 1024 * 1024 + 17);
  RecordingFactory server;
  server.setup = [&](Record& r) {
    r.on_made = [&](Record& rr) {
      std::string copy = payload;
      rr.transport->write(std::move(copy));
      std::string_view parts[] = {"-", "tail", "-"};
      rr.transport->write_sequence(parts);
      rr.transport->lose_connection();
    };
  };
  auto port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory client;
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return client.lost == 1; }, "the transfer");
  REQUIRE(client.records.size() == 1);
  CHECK(client.records[0].received == payload + "-tail-");
}

TEST_CASE("a refused connection says connection refused") {
  Reactor reactor;
  RecordingFactory server;
  auto port = listen_tcp(reactor, 0, server, loopback());
  const int closed_port = port->port();
  port->stop_listening();
  RecordingClientFactory client;
  connect_tcp(reactor, "127.0.0.1", closed_port, client);
  wait_for(reactor, [&] { return client.failed == 1; }, "the failure");
  CHECK(client.started == 1);
  CHECK(client.records.empty());
  INFO(client.failure->message());
  CHECK(client.failure->is(error::connection_refused));
  // Each thing once: not "connection refused: Connection refused (...)".
  CHECK(client.failure->message() ==
        "connection refused (127.0.0.1:" + std::to_string(closed_port) + ")");
}

TEST_CASE("abort_connection discards the queue and resets") {
  Reactor reactor;
  const std::string payload = pattern(16 * 1024 * 1024);
  RecordingFactory server;
  std::size_t queued_before_abort = 0;
  server.setup = [&](Record& r) {
    r.on_made = [&](Record& rr) {
      rr.transport->write(payload);
      queued_before_abort = rr.transport->buffer_size();
      rr.transport->abort_connection();
      CHECK(rr.transport->buffer_size() == 0);
      CHECK_FALSE(rr.transport->connected());
      CHECK(rr.lost == 0);  // never from inside the call
    };
  };
  auto port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory client;
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return client.lost == 1 && server.records.size() == 1 && server.records[0].done(); },
           "both sides to see the abort");
  CHECK(queued_before_abort > 0);
  CHECK(server.records[0].reason->is(error::connection_aborted));
  CHECK(client.records[0].received.size() < payload.size());
  CHECK_FALSE(client.records[0].reason->clean());
  CHECK(client.records[0].reason->is(error::connection_lost));
}

TEST_CASE("lose_in_data_received") {
  Reactor reactor;
  RecordingFactory server;
  server.setup = [](Record& r) {
    r.on_data = [](Record& rr, std::string_view d) {
      rr.transport->write(d);
      rr.transport->lose_connection();
      CHECK(rr.lost == 0);
      rr.transport->write("ignored");
    };
  };
  auto port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory client;
  client.setup = [](Record& r) { r.on_made = [](Record& rr) { rr.transport->write("ping"); }; };
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return client.lost == 1 && server.records.size() == 1 && server.records[0].done(); },
           "both closes");
  CHECK(client.records[0].received == "ping");
  CHECK(client.records[0].reason->clean());
  CHECK(server.records[0].reason->clean());
}

TEST_CASE("abort_in_connection_made and a refusing factory") {
  Reactor reactor;
  RecordingFactory server;
  server.setup = [](Record& r) { r.on_made = [](Record& rr) { rr.transport->abort_connection(); }; };
  auto port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory client;
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return client.lost == 1 && server.records.size() == 1 && server.records[0].done(); },
           "the abort");
  CHECK(server.records[0].reason->is(error::connection_aborted));

  FunctionFactory<> refusing([](const Address&) -> std::unique_ptr<Protocol> { return nullptr; });
  auto port2 = listen_tcp(reactor, 0, refusing, loopback());
  RecordingClientFactory client2;
  connect_tcp(reactor, "127.0.0.1", port2->port(), client2);
  wait_for(reactor, [&] { return client2.lost == 1; }, "the refused connection to close");
  CHECK(client2.records[0].received.empty());
  CHECK(reactor.connection_count() == 0);
}

TEST_CASE("a client factory that refuses fails the attempt") {
  Reactor reactor;
  RecordingFactory server;
  auto port = listen_tcp(reactor, 0, server, loopback());
  struct Refusing : RecordingClientFactory {
    std::unique_ptr<Protocol> build_protocol(const Address&) override { return nullptr; }
  } client;
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return client.failed == 1; }, "the failure");
  CHECK(client.failure->is(error::refused_by_factory));
}

TEST_CASE("peer close mid-stream: connection_lost exactly once on each side") {
  Reactor reactor;
  RecordingFactory server;
  // The server keeps writing whatever it gets, doubled, until the client resets.
  server.setup = [](Record& r) {
    r.on_data = [](Record& rr, std::string_view d) {
      rr.transport->write(d);
      rr.transport->write(d);
    };
  };
  auto port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory client;
  client.setup = [](Record& r) {
    r.on_made = [](Record& rr) { rr.transport->write(std::string(100000, 'x')); };
    r.on_data = [](Record& rr, std::string_view) {
      if (rr.received.size() > 50000) rr.transport->abort_connection();
    };
  };
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return client.lost == 1 && server.records.size() == 1 && server.records[0].done(); },
           "both sides to finish");
  CHECK(client.records[0].reason->is(error::connection_aborted));
  CHECK_FALSE(server.records[0].reason->clean());
  CHECK(reactor.connection_count() == 0);
}

TEST_CASE("exceptions in callbacks abort only that connection") {
  Reactor reactor;
  std::vector<std::string> logged;
  set_log_sink([&](LogLevel, std::string_view m) { logged.emplace_back(m); });
  RecordingFactory server;
  server.setup = [](Record& r) {
    r.on_data = [](Record& rr, std::string_view d) {
      if (d.find("boom") != std::string_view::npos) throw std::runtime_error("protocol bug");
      rr.transport->write(d);
    };
  };
  auto port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory bad, good;
  bad.setup = [](Record& r) { r.on_made = [](Record& rr) { rr.transport->write("boom"); }; };
  good.setup = [](Record& r) { r.on_made = [](Record& rr) { rr.transport->write("fine"); }; };
  connect_tcp(reactor, "127.0.0.1", port->port(), bad);
  wait_for(reactor, [&] { return bad.lost == 1; }, "the bad connection to be aborted");
  connect_tcp(reactor, "127.0.0.1", port->port(), good);
  wait_for(reactor, [&] { return good.records.size() == 1 && good.records[0].received == "fine"; },
           "the good connection to be served");
  set_log_sink(nullptr);
  REQUIRE(server.records.size() == 2);
  CHECK(server.records[0].reason->is(error::callback_threw));
  CHECK(server.records[0].reason->exception() != nullptr);
  CHECK(server.records[1].lost == 0);
  REQUIRE_FALSE(logged.empty());
  CHECK(logged[0].find("protocol bug") != std::string::npos);
  CHECK(logged[0].find("127.0.0.1") != std::string::npos);
}

TEST_CASE("idle callbacks do not run while a socket is writable and data is queued") {
  Reactor reactor;
  const std::size_t total = 32 * 1024 * 1024;
  RecordingFactory server;
  // A reader that pauses now and then, so the writer's socket fills up for a while.
  server.setup = [&](Record& r) {
    r.on_data = [&](Record& rr, std::string_view) {
      if (rr.received.size() > total / 2) rr.received.clear(), rr.received.resize(total / 2 + 1);
      rr.transport->pause_producing();
      Transport* t = rr.transport;
      reactor.call_later(0.0005, [t, &rr] { if (rr.lost == 0) t->resume_producing(); });
    };
  };
  auto port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory client;
  Transport* writer = nullptr;
  client.setup = [&](Record& r) {
    r.on_made = [&](Record& rr) {
      writer = rr.transport;
      rr.transport->write(pattern(total));
      rr.transport->lose_connection();
    };
  };
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  int idle_with_queue = 0, violations = 0, idle_runs = 0;
  std::function<void()> idle = [&] {
    ++idle_runs;
    if (writer && client.lost == 0 && writer->buffer_size() > 0) {
      ++idle_with_queue;
      pollfd p{writer->native_handle(), POLLOUT, 0};
      if (::poll(&p, 1, 0) == 1 && (p.revents & POLLOUT)) ++violations;
    }
    if (client.lost == 0) reactor.call_idle(idle);
  };
  reactor.call_idle(idle);
  wait_for(reactor, [&] { return client.lost == 1; }, "the transfer");
  CHECK(client.records[0].reason->clean());
  CHECK(idle_runs > 0);
  CHECK(idle_with_queue > 0);
  CHECK(violations == 0);
}

TEST_CASE("pause_producing holds data back and resume delivers it in order") {
  Reactor reactor;
  RecordingFactory server;
  server.setup = [&](Record& r) {
    r.on_made = [](Record& rr) { rr.transport->pause_producing(); rr.transport->pause_producing(); };
  };
  auto port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory client;
  client.setup = [](Record& r) {
    r.on_made = [](Record& rr) {
      rr.transport->write("one,");
      rr.transport->write("two,");
      rr.transport->lose_write_connection();
    };
  };
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  // The bytes and the FIN reach the paused server's socket (the kernel says so).
  REQUIRE(wait_for(
      reactor,
      [&] {
        return server.records.size() == 1 && server.records[0].transport != nullptr &&
               test::unread_bytes(server.records[0].transport->native_handle()) == 8 &&
               test::fin_received(server.records[0].transport->native_handle());
      },
      "the bytes and the FIN to reach the paused server"));
  CHECK(server.records[0].received.empty());
  CHECK(server.records[0].lost == 0);
  server.records[0].transport->resume_producing();
  server.records[0].transport->resume_producing();
  wait_for(reactor, [&] { return server.records[0].done(); }, "the data and EOF");
  CHECK(server.records[0].received == "one,two,");
  CHECK(server.records[0].eofs == 1);
  CHECK(server.records[0].reason->clean());
}

TEST_CASE("half close: eof_received may keep the connection open for writing") {
  Reactor reactor;
  RecordingFactory server;
  server.setup = [](Record& r) {
    r.keep_open_on_eof = true;
    r.on_data = [](Record&, std::string_view) {};
  };
  auto port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory client;
  client.setup = [](Record& r) {
    r.on_made = [](Record& rr) {
      rr.transport->write("request");
      rr.transport->lose_write_connection();
    };
  };
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return server.records.size() == 1 && server.records[0].eofs == 1; }, "EOF");
  Record& s = server.records[0];
  CHECK(s.received == "request");
  CHECK(s.lost == 0);
  s.transport->write("response after EOF");
  s.transport->lose_connection();
  wait_for(reactor, [&] { return client.lost == 1 && s.done(); }, "both closes");
  CHECK(client.records[0].received == "response after EOF");
  CHECK(client.records[0].reason->clean());
  CHECK(s.reason->clean());
}

TEST_CASE("connect timeout gives a timed-out reason") {
  Reactor reactor;
  // A listening socket that never accepts, with its queue full: the kernel drops new
  // SYNs, so a connect hangs like one to a black-holed address.
  asio::ip::tcp::acceptor full(reactor.context(),
                               asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  full.listen(1);
  const auto target = full.local_endpoint();
  std::vector<asio::ip::tcp::socket> fillers;
  for (int i = 0; i < 4; ++i) {
    fillers.emplace_back(reactor.context());
    fillers.back().async_connect(target, [](const std::error_code&) {});
  }
  RecordingClientFactory client;
  TcpConnectOptions co;
  co.timeout = 0.3;
  connect_tcp(reactor, "127.0.0.1", target.port(), client, co);
  wait_for(reactor, [&] { return client.failed == 1; }, "the time-out");
  CHECK(client.failure->is(error::timed_out));
  CHECK(client.failure->message().find("timed out") != std::string::npos);
  CHECK(client.records.empty());
}

TEST_CASE("bad arguments are clear errors") {
  Reactor reactor;
  RecordingFactory server;
  RecordingClientFactory client;
  CHECK_THROWS_WITH_AS(listen_tcp(reactor, 70000, server), doctest::Contains("70000"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(connect_tcp(reactor, "127.0.0.1", 0, client), doctest::Contains("got 0"),
                       std::invalid_argument);
  TcpConnectOptions co;
  co.timeout = -1;
  CHECK_THROWS_AS(connect_tcp(reactor, "127.0.0.1", 80, client, co), std::invalid_argument);
  TcpListenOptions lo;
  lo.interface = "not-an-address";
  CHECK_THROWS_WITH_AS(listen_tcp(reactor, 0, server, lo), doctest::Contains("not-an-address"),
                       std::invalid_argument);
  auto port = listen_tcp(reactor, 0, server, loopback());
  TcpListenOptions same = loopback();
  std::error_code ec;
  auto second = listen_tcp(reactor, port->port(), server, same, ec);
  CHECK(second == nullptr);
  CHECK(ec == std::errc::address_in_use);
  CHECK_THROWS_AS(listen_tcp(reactor, port->port(), server, same), std::system_error);
  CHECK(client.started == 0);
}

TEST_CASE("name lookup failure is reported") {
  Reactor reactor;
  RecordingClientFactory client;
  connect_tcp(reactor, "no-such-host.invalid", 80, client);
  wait_for(reactor, [&] { return client.failed == 1; }, "the lookup failure");
  CHECK(client.failure->is(error::lookup_failed));
}

TEST_CASE("disconnect cancels an attempt in progress") {
  Reactor reactor;
  RecordingFactory server;
  auto port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory client;
  auto connector = connect_tcp(reactor, "127.0.0.1", port->port(), client);
  connector->disconnect();
  wait_for(reactor, [&] { return client.failed == 1; }, "the cancellation");
  CHECK(client.failure->is(error::cancelled));
  CHECK(client.records.empty());
  // And the connector can try again.
  connector->connect();
  wait_for(reactor, [&] { return client.records.size() == 1 && client.records[0].made == 1; },
           "the second attempt");
  connector->disconnect();
  wait_for(reactor, [&] { return client.lost == 1; }, "the close");
  CHECK(client.lost_reason->clean());
}

TEST_CASE("a callback exception is logged with the connection id and both addresses") {
  Reactor reactor;
  std::vector<LogContext> contexts;
  std::vector<std::string> messages;
  set_log_event_sink([&](const LogEvent& e) {
    if (!e.context) return;
    contexts.push_back(*e.context);
    messages.emplace_back(e.message);
  });
  RecordingFactory server;
  server.setup = [](Record& r) {
    r.on_data = [](Record&, std::string_view) { throw std::runtime_error("protocol bug"); };
  };
  auto port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory client;
  client.setup = [](Record& r) { r.on_made = [](Record& rr) { rr.transport->write("x"); }; };
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return client.lost == 1 && server.records.size() == 1 && server.records[0].done(); },
           "the aborted connection to end");
  set_log_sink(nullptr);
  REQUIRE(contexts.size() == 1);
  CHECK(contexts[0].connection_id > 0);
  CHECK(contexts[0].host.port() == port->port());
  CHECK(contexts[0].peer.host() == "127.0.0.1");
  CHECK(messages[0].find("exception in data_received: protocol bug") != std::string::npos);
}
