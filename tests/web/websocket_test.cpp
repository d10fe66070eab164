#include "web/websocket.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "framework/testing/manual_clock.hpp"
#include "framework/testing/string_transport.hpp"
#include "tests/web/websocket_recorder.hpp"
#include "tests/web/ws_server_support.hpp"
#include "web/detail/ws_setup.hpp"

using namespace torsion::web;
using torsion::testing::ManualClock;
using torsion::testing::StringTransport;
using torsion::web::test::Echo;
using torsion::web::test::ws_frame;
using torsion::web::test::WsServer;

namespace {

using Events = std::vector<std::string>;

}  // namespace

TEST_CASE("websocket: echoes text and binary, fragmented or not, answers pings") {
  WsServer<> s;
  s.transport.receive(ws_frame(WsOpcode::text, "hel", false) + ws_frame(WsOpcode::ping, "p") +
                      ws_frame(WsOpcode::continuation, "lo") + ws_frame(WsOpcode::binary, "b"));
  CHECK(s.sent().events == Events{"pong:p", "text:hello", "binary:b"});
  CHECK(s.sent().error == 0);
  CHECK_FALSE(s.transport.disconnecting());
}

TEST_CASE("websocket: protocol errors close with their code, then the connection") {
  struct Case {
    std::string input;
    std::uint16_t code;
  };
  const std::vector<Case> cases = {
      {ws_frame(WsOpcode::text, "x", true, false), ws_close::protocol_error},   // unmasked
      {ws_frame(WsOpcode::text, "\xff"), ws_close::invalid_payload},
      {ws_frame(WsOpcode::binary, std::string(101, 'x')), ws_close::message_too_big},
      {ws_frame(WsOpcode::close, std::string("\x03\xed", 2)), ws_close::protocol_error},  // 1005
      {ws_frame(static_cast<WsOpcode>(5), ""), ws_close::protocol_error},
  };
  for (const auto& c : cases) {
    CAPTURE(c.code);
    WebSocketOptions options;
    options.max_message = 100;
    WsServer<> s(options);
    s.transport.receive(c.input);
    const auto sent = s.sent();
    REQUIRE(sent.events.size() == 1);
    CHECK(sent.events[0].rfind("close:" + std::to_string(c.code) + ":", 0) == 0);
    CHECK(s.transport.disconnecting());
    s.transport.disconnect();
    CHECK(s.protocol.status.code == c.code);
    CHECK_FALSE(s.protocol.status.clean);
  }
}

TEST_CASE("websocket: the peer's close is echoed and the server closes") {
  WsServer<> s;
  s.transport.receive(ws_frame(WsOpcode::close, ws_close_payload(4000, "bye")) +
                      ws_frame(WsOpcode::text, "ignored"));
  CHECK(s.sent().events == Events{"close:4000:"});
  CHECK(s.transport.disconnecting());
  s.transport.disconnect();
  CHECK(s.protocol.closed_calls == 1);
  CHECK(s.protocol.status.code == 4000);
  CHECK(s.protocol.status.reason == "bye");
  CHECK(s.protocol.status.clean);
}

TEST_CASE("websocket: close() waits close_timeout for the peer's close, then aborts") {
  WebSocketOptions options;
  options.close_timeout = 3;
  {
    WsServer<> s(options);
    s.protocol.close(1001, "going");
    CHECK_FALSE(s.protocol.is_open());
    s.protocol.send_text("dropped");
    CHECK(s.sent().events == Events{"close:1001:going"});
    s.clock.advance(2.9);
    CHECK_FALSE(s.transport.aborted());
    s.clock.advance(0.2);
    CHECK(s.transport.aborted());
    s.transport.disconnect(torsion::Reason(torsion::error::connection_aborted));
    CHECK(s.protocol.status.code == 1001);
    CHECK_FALSE(s.protocol.status.clean);
  }
  {
    WsServer<> s(options);
    s.protocol.close();
    s.transport.receive(ws_frame(WsOpcode::close, ws_close_payload(1000, "")));
    CHECK(s.transport.disconnecting());
    s.transport.disconnect();
    s.clock.advance(10);
    CHECK_FALSE(s.transport.aborted());
    CHECK(s.protocol.status.clean);
    CHECK(s.protocol.status.code == 1000);
  }
  WsServer<> s;
  CHECK_THROWS_AS(s.protocol.close(1005), std::invalid_argument);
  CHECK_THROWS_AS(s.protocol.close(999), std::invalid_argument);
  CHECK_THROWS_AS(s.protocol.ping(std::string(126, 'x')), std::invalid_argument);
  CHECK_THROWS_AS(s.protocol.send_text("\xc3"), std::invalid_argument);
}

TEST_CASE("websocket: keep-alive pings, and a dead peer is closed with 1011") {
  WebSocketOptions options;
  options.ping_interval = 10;
  options.ping_timeout = 5;
  WsServer<> s(options);
  s.clock.advance(10);
  CHECK(s.sent().events == Events{"ping:keepalive"});
  s.transport.receive(ws_frame(WsOpcode::pong, "keepalive"));
  CHECK(s.protocol.pongs == Events{"keepalive"});
  s.clock.advance(9);
  CHECK_FALSE(s.transport.aborted());
  s.transport.clear();
  s.clock.advance(1);  // the second ping, never answered
  CHECK(s.sent().events == Events{"ping:keepalive"});
  s.clock.advance(4.9);
  CHECK_FALSE(s.transport.aborted());
  s.clock.advance(0.2);
  CHECK(s.transport.aborted());
  CHECK(s.sent().events == Events{"ping:keepalive", "close:1011:keepalive ping timeout"});
  s.transport.disconnect(torsion::Reason(torsion::error::connection_aborted));
  CHECK(s.protocol.status.code == 1011);
}

TEST_CASE("websocket: receive() queues messages and pauses reading when nobody takes them") {
  WebSocketOptions options;
  options.max_queue = 2;
  WsServer<WebSocketProtocol> s(options);
  auto first = s.protocol.receive();
  CHECK_FALSE(first.called());
  s.transport.receive(ws_frame(WsOpcode::text, "1"));
  REQUIRE(first.called());
  std::string got;
  first.add_callback([&](Message m) { got = m.data; });
  CHECK(got == "1");
  s.transport.receive(ws_frame(WsOpcode::text, "2") + ws_frame(WsOpcode::binary, "3"));
  CHECK(s.transport.reading_paused());
  s.protocol.receive().add_callback([&](Message m) { got = m.data; });
  CHECK(got == "2");
  CHECK_FALSE(s.transport.reading_paused());
  s.protocol.receive().add_callback([&](Message m) { got = m.data + (m.binary() ? "b" : "t"); });
  CHECK(got == "3b");
  bool failed = false;
  auto pending = s.protocol.receive();
  pending.add_errback([&](std::exception_ptr e) {
    try {
      std::rethrow_exception(e);
    } catch (const WebSocketClosedError& closed) {
      failed = closed.status().code == ws_close::abnormal;
    }
    return Message{};
  });
  s.transport.receive_eof();
  s.transport.disconnect(torsion::Reason(torsion::error::connection_lost));
  CHECK(failed);
}

TEST_CASE("websocket: a client masks what it sends") {
  ManualClock clock;
  StringTransport transport;
  Echo client;
  torsion::web::detail::WsSetup::start(client, clock, WsRole::client);
  transport.connect(client);
  client.send_text(std::string(100, 'a'));
  const auto parsed = torsion::web::test::ws_parse({transport.value()}, {});  // server side
  CHECK(parsed.events == Events{"text:" + std::string(100, 'a')});
  CHECK(parsed.error == 0);
}

TEST_CASE("websocket: send(Message) takes the bytes, small or large, on either side") {
  WsServer<WebSocketProtocol> s;
  const std::string big(5000, 'B');
  s.protocol.send(Message{Message::Type::binary, big});
  s.protocol.send(Message{Message::Type::text, "small \xc3\xa9"});
  CHECK(s.sent().events == Events{"binary:" + big, "text:small \xc3\xa9"});
  CHECK_THROWS_AS(s.protocol.send(Message{Message::Type::text, "\xff"}), std::invalid_argument);

  ManualClock clock;
  StringTransport transport;
  WebSocketProtocol client;
  torsion::web::detail::WsSetup::start(client, clock, WsRole::client);
  transport.connect(client);
  client.send(Message{Message::Type::text, std::string(3000, 't')});
  client.send(Message{Message::Type::binary, big});
  const auto parsed = torsion::web::test::ws_parse({transport.value()}, {});  // masked, to a server
  CHECK(parsed.events == Events{"text:" + std::string(3000, 't'), "binary:" + big});
  CHECK(parsed.error == 0);
}
