#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "docs/snippets/snippets.hpp"
#include "framework/protocol.hpp"
#include "framework/testing/string_transport.hpp"
#include "framework/testing/manual_clock.hpp"
#include "protocols/line_receiver.hpp"
#include "protocols/proxy_protocol.hpp"
#include "protocols/timeout.hpp"
#include "transports/tcp.hpp"

namespace docs {
namespace {

// [snippet:proxy-header]
// Behind a load balancer that speaks the PROXY protocol: the real client, and what the
// balancer learnt from its TLS handshake.
class Greeter : public torsion::Protocol {
 public:
  explicit Greeter(std::string& seen) : seen_(seen) {}
  void connection_made() override {
    seen_ = transport().get_peer().to_string();  // the client named in the header
    if (const torsion::ProxyHeader* h = torsion::proxy_header(transport())) {
      seen_ += " asked for " + std::string(h->authority().value_or("-"));
      if (h->ssl && h->ssl->client_ssl())
        seen_ += " over " + std::string(h->ssl->version().value_or("TLS"));
    }
  }

 private:
  std::string& seen_;
};
// [end]

// [snippet:echo]
class Echo : public torsion::Protocol {
 public:
  void data_received(std::string_view data) override { transport().write(data); }
};
// [end]

// [snippet:hello-client]
class Hello : public torsion::Protocol {
 public:
  explicit Hello(std::string& reply) : reply_(reply) {}
  void connection_made() override { transport().write("hello"); }
  void data_received(std::string_view data) override {
    reply_.append(data);
    if (reply_.size() >= 5) transport().lose_connection();  // flushes, then closes
  }

 private:
  std::string& reply_;
};

class HelloFactory : public torsion::ClientFactory {
 public:
  HelloFactory(torsion::Reactor& reactor, std::string& reply) : reactor_(reactor), reply_(reply) {}
  std::unique_ptr<torsion::Protocol> build_protocol(const torsion::Address&) override {
    return std::make_unique<Hello>(reply_);
  }
  void client_connection_failed(torsion::Connector&, const torsion::Reason& why) override {
    std::fprintf(stderr, "%s\n", why.message().c_str());  // e.g. "connection refused (127.0.0.1:1)"
    reactor_.stop();
  }
  void client_connection_lost(torsion::Connector&, const torsion::Reason&) override {
    reactor_.stop();
  }

 private:
  torsion::Reactor& reactor_;
  std::string& reply_;
};
// [end]

// [snippet:limited-factory]
// Refuses connections beyond `limit` at once: a null protocol closes the socket
// without any protocol event.
class LimitedFactory : public torsion::Factory {
 public:
  explicit LimitedFactory(int limit) : limit_(limit) {}
  std::unique_ptr<torsion::Protocol> build_protocol(const torsion::Address&) override {
    if (live_ >= limit_) return nullptr;
    return std::make_unique<Counted>(*this);
  }
  int live() const { return live_; }

 private:
  class Counted : public torsion::Protocol {
   public:
    explicit Counted(LimitedFactory& f) : f_(f) { ++f_.live_; }
    void connection_lost(const torsion::Reason&) override { --f_.live_; }

   private:
    LimitedFactory& f_;
  };
  int limit_;
  int live_ = 0;
};
// [end]

// [snippet:shared-state]
// What every connection shares: the application's, not the factory's.
struct Room {
  std::vector<std::string> said;
};

class Member : public torsion::LineReceiver {
 public:
  explicit Member(Room& room) : room_(room) {}
  void line_received(std::string_view line) override { room_.said.emplace_back(line); }

 private:
  Room& room_;
};
// [end]

// Reads the room it was given: with make_factory<Viewer>(room), the factory's copy.
class Viewer : public torsion::Protocol {
 public:
  explicit Viewer(const Room& room) : room_(room) {}
  std::size_t seen() const { return room_.said.size(); }

 private:
  const Room& room_;
};

}  // namespace

SharedState shared_state() {
  SharedState out;
  // [snippet:make-factory-ref]
  Room room;
  auto members = torsion::make_factory<Member>(std::ref(room));  // every Member gets `room`
  // make_factory<Member>(room) would copy `room` into the factory. Here that does not
  // compile (the copy is const, Member wants Room&); with a constructor taking
  // `const Room&` it would compile, and every protocol would read the factory's copy.
  // [end]
  auto copying = torsion::make_factory<Viewer>(room);  // copies `room` (empty) now
  for (const char* line : {"hi\r\n", "bye\r\n"}) {
    auto p = members.build_protocol(torsion::Address::ip("127.0.0.1", 5000));
    torsion::testing::StringTransport t;
    t.connect(*p);
    t.receive(line);
    t.disconnect();
  }
  out.said = room.said;
  auto viewer = copying.build_protocol(torsion::Address::ip("127.0.0.1", 5000));
  out.copy_sees = static_cast<Viewer&>(*viewer).seen();
  return out;
}

std::string hello_through_echo(torsion::Reactor& reactor) {
  torsion::TcpListenOptions loopback;
  loopback.interface = "127.0.0.1";
  std::string reply;
  // [snippet:listen-and-connect]
  auto echo = torsion::make_factory<Echo>();  // builds an Echo per connection
  auto port = torsion::listen_tcp(reactor, 0, echo, loopback);  // 0: the kernel picks

  HelloFactory hello(reactor, reply);
  torsion::connect_tcp(reactor, "127.0.0.1", port->port(), hello);
  reactor.run();  // until HelloFactory stops it
  // [end]
  port->stop_listening();  // `echo` goes when this returns; the caller's reactor stays
  return reply;
}

int connections_refused_over_limit(torsion::Reactor& reactor) {
  torsion::TcpListenOptions loopback;
  loopback.interface = "127.0.0.1";
  LimitedFactory limited(1);
  auto port = torsion::listen_tcp(reactor, 0, limited, loopback);
  // Two clients that stay connected: the second is refused by the factory.
  struct Idle : torsion::Protocol {};
  struct Clients : torsion::ClientFactory {
    int lost = 0;
    std::unique_ptr<torsion::Protocol> build_protocol(const torsion::Address&) override {
      return std::make_unique<Idle>();
    }
    void client_connection_lost(torsion::Connector&, const torsion::Reason&) override { ++lost; }
  } clients;
  auto first = torsion::connect_tcp(reactor, "127.0.0.1", port->port(), clients);
  reactor.run_until([&] { return limited.live() == 1; }, 10);
  auto second = torsion::connect_tcp(reactor, "127.0.0.1", port->port(), clients);
  reactor.run_until([&] { return clients.lost == 1; }, 10);  // the refused one closes
  const int refused = clients.lost;
  first->disconnect();
  reactor.run_until([&] { return reactor.connection_count() == 0; }, 10);
  return refused;
}

std::string what_the_proxy_said() {
  std::string seen;
  // [snippet:proxy-factory]
  auto greeter = torsion::make_factory<Greeter>(std::ref(seen));
  torsion::ProxyProtocolFactory behind_balancer(greeter);  // listen with this one
  // [end]
  // A v2 header: 192.0.2.1:56324 -> 198.51.100.7:443, authority example.com, TLSv1.3.
  auto tlv = [](char type, std::string value) {
    return std::string{type, '\0', static_cast<char>(value.size())} + value;
  };
  std::string body("\xc0\x00\x02\x01\xc6\x33\x64\x07\xdc\x04\x01\xbb", 12);
  body += tlv('\x02', "example.com");
  body += tlv('\x20', std::string("\x01\0\0\0\0", 5) + tlv('\x21', "TLSv1.3"));
  const std::string header =
      std::string("\r\n\r\n\0\r\nQUIT\n\x21\x11\0", 15) + static_cast<char>(body.size()) + body;
  auto wrapper = behind_balancer.build_protocol(torsion::Address::ip("10.0.0.1", 5000));
  torsion::testing::StringTransport t;
  t.connect(*wrapper);
  wrapper->data_received(header);
  t.disconnect();
  return seen;
}

namespace {
class Commands : public torsion::LineReceiver {
 public:
  void line_received(std::string_view) override {}
};
}  // namespace

double slow_peer_cut_off_after() {
  torsion::testing::ManualClock clock;
  auto commands = torsion::make_factory<Commands>();
  // [snippet:slow-peers]
  torsion::TimeoutFactory idle(commands, clock, 60);    // no read, no write for 60 s: aborted
  torsion::LineDeadlineFactory lines(idle, clock, 10);  // each line within 10 s
  // listen with `lines`: a peer dripping one byte a second is cut off after 10 s
  // [end]
  auto protocol = lines.build_protocol(torsion::Address::ip("127.0.0.1", 5000));
  torsion::testing::StringTransport t;
  t.connect(*protocol);
  while (!t.aborted() && clock.seconds() < 100) {
    protocol->data_received("x");  // one byte a second, never a whole line
    clock.advance(1);
  }
  return clock.seconds();
}

}  // namespace docs
