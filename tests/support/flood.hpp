#pragma once
// Test helper for back-pressure by default: a server that echoes what it reads with write
// buffer marks of 4096/1024, and a client that never reads (reading paused) until the
// test says so. The same checks run over TCP (flow_control_test.cpp) and over TLS
// (tls_flow_control_test.cpp); only how the two sides listen and connect differs.

#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "framework/listening_port.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "framework/transport.hpp"
#include "tests/support/pattern.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/socket_probe.hpp"
#include "tests/support/wait.hpp"

namespace torsion::test {

struct Flood {
  static constexpr std::size_t kHigh = 4096, kLow = 1024;
  Reactor reactor;
  RecordingFactory server;
  RecordingClientFactory client;
  std::shared_ptr<ListeningPort> port;
  std::shared_ptr<Connector> connector;
  // How often the server was handed data while its queue was above the high mark, and
  // the largest queue it had.
  int entered_above_high = 0;
  std::size_t max_buffer = 0;

  // `first` runs first in the server's connection_made (start_tls uses it).
  explicit Flood(bool pause_reading_when_full, std::function<void(Transport&)> first = {}) {
    server.setup = [this, pause_reading_when_full, first](Record& r) {
      r.on_made = [pause_reading_when_full, first](Record& rr) {
        if (first) first(*rr.transport);
        rr.transport->set_write_buffer_limits(kHigh, kLow);
        if (!pause_reading_when_full) rr.transport->set_pause_reading_when_full(false);
      };
      r.on_data = [this](Record& rr, std::string_view data) {
        if (rr.transport->buffer_size() > kHigh) ++entered_above_high;
        rr.transport->write(data);
        max_buffer = std::max(max_buffer, rr.transport->buffer_size());
      };
    };
    client.setup = [](Record& r) {
      r.on_made = [](Record& rr) { rr.transport->pause_producing(); };
    };
  }

  // Listens with `listen`, connects to its port with `connect`, and waits for both ends.
  void start(const std::function<std::shared_ptr<ListeningPort>()>& listen,
             const std::function<std::shared_ptr<Connector>(int port)>& connect) {
    port = listen();
    REQUIRE(port);
    connector = connect(port->port());
    wait_for(reactor, [&] { return client.records.size() == 1 && server.records.size() == 1; },
             "the connection");
    wait_for(reactor, [&] { return srv().made == 1 && cli().made == 1; }, "both ends made");
  }

  Record& srv() { return server.records[0]; }
  Record& cli() { return client.records[0]; }

  // The client sends more than the kernel's buffers of both sides hold. The server echoes
  // until its queue passes the high mark, then stops reading: what the client sent waits
  // in the server's kernel and the rest in the client's own queue.
  std::string flood_until_held() {
    REQUIRE(srv().transport->pauses_reading_when_full());
    std::string payload = pattern_stream().bytes(32u << 20);
    cli().transport->write(payload);
    wait_for(
        reactor,
        [&] {
          return srv().transport->buffer_size() > kHigh &&
                 unread_bytes(srv().transport->native_handle()) > 0 &&
                 cli().transport->buffer_size() > 0;
        },
        "the server to stop reading");
    CHECK(srv().received.size() < payload.size());
    return payload;
  }

  // With reading not paused when full, the server keeps reading: its queue grows past a
  // megabyte.
  std::string flood_past_a_megabyte() {
    REQUIRE_FALSE(srv().transport->pauses_reading_when_full());
    std::string payload = pattern_stream().bytes(32u << 20);
    cli().transport->write(payload);
    wait_for(
        reactor, [&] { return srv().transport->buffer_size() > (1u << 20); },
        "the server to queue a megabyte");
    CHECK(srv().received.size() > (1u << 20));
    return payload;
  }

  // The client reads again and everything comes back, in order; then both sides close.
  void finish(const std::string& payload) {
    cli().transport->resume_producing();
    wait_for(reactor, [&] { return cli().received.size() == payload.size(); },
             "the whole echo");
    CHECK(pattern_stream().matches(0, cli().received));
    cli().transport->lose_connection();
    wait_for(reactor, [&] { return srv().done() && cli().done(); }, "both sides to close");
    port->stop_listening();
    wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "every connection");
  }
};

}  // namespace torsion::test
