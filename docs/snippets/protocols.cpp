// The protocols page's snippets; docs/snippets_test.cpp drives each one through a
// StringTransport (no sockets) and checks what it did.
#include <cctype>
#include <charconv>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "docs/snippets/snippets.hpp"
#include "framework/protocol.hpp"
#include "framework/testing/manual_clock.hpp"
#include "framework/testing/string_transport.hpp"
#include "protocols/limits.hpp"
#include "protocols/line_receiver.hpp"
#include "protocols/netstring_receiver.hpp"
#include "protocols/prefixed_string_receiver.hpp"
#include "protocols/throttling.hpp"
#include "protocols/timeout.hpp"
#include "protocols/wrapping.hpp"

namespace docs {
namespace {

using torsion::testing::ManualClock;
using torsion::testing::StringTransport;

// [snippet:line-receiver]
// Answers every line in upper case. The delimiter is the default, "\r\n".
class Shout : public torsion::LineReceiver {
 public:
  void line_received(std::string_view line) override {
    std::string reply(line);  // the line, without its delimiter
    for (char& c : reply) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    send_line(reply);  // reply + "\r\n", in one write
  }
};
// [end]

// [snippet:newline-delimiter]
// Lines ended by "\n" (nc, shell scripts) as well as "\r\n" (telnet): split on "\n" and
// drop a trailing '\r'. A line over 1024 bytes closes the connection (the default).
class Commands : public torsion::LineReceiver {
 public:
  Commands() : torsion::LineReceiver("\n", /*max_length=*/1024) {}
  void line_received(std::string_view line) override {
    if (line.ends_with('\r')) line.remove_suffix(1);
    send_line("ok " + std::string(line));  // ends with "\n", the delimiter in force
  }
};
// [end]

// [snippet:line-too-long]
// Answers an over-long line with an error and keeps the connection, where the default
// line_length_exceeded would close it. As in Twisted, the rest of that read is dropped
// with the line; the next read begins a new line.
class Tolerant : public torsion::LineReceiver {
 public:
  Tolerant() : torsion::LineReceiver("\r\n", /*max_length=*/16) {}
  void line_received(std::string_view line) override { send_line(line); }
  void line_length_exceeded(std::string_view) override { send_line("ERR line too long"); }
};
// [end]

// [snippet:expect-raw]
// A memcached-style store: "set <key> <n>\r\n" then n bytes and "\r\n"; "get <key>\r\n"
// answers "VALUE <key> <n>\r\n<bytes>\r\nEND\r\n". expect_raw reads the value, however
// the reads cut it, without copying what follows.
class Store : public torsion::LineReceiver {
 public:
  static constexpr std::size_t kMaxValue = 1 << 20;
  void line_received(std::string_view line) override {
    if (line.starts_with("set ")) {
      const std::size_t space = line.rfind(' ');
      std::size_t n = 0;
      const auto [end, ec] = std::from_chars(line.data() + space + 1, line.end(), n);
      if (space < 4 || ec != std::errc() || end != line.end() || n > kMaxValue)
        return send_line("CLIENT_ERROR bad command line format");
      key_ = line.substr(4, space - 4);
      value_.clear();
      expect_raw(n + 2);  // the value and its "\r\n", then lines again
    } else if (line.starts_with("get ")) {
      const auto found = values_.find(std::string(line.substr(4)));
      if (found != values_.end()) {
        send_line("VALUE " + found->first + " " + std::to_string(found->second.size()));
        send_line(found->second);
      }
      send_line("END");
    } else {
      send_line("ERROR");
    }
  }
  void raw_data_received(std::string_view data) override {
    value_.append(data);
    if (raw_remaining() > 0) return;  // more of the value to come
    if (!value_.ends_with("\r\n")) return send_line("CLIENT_ERROR bad data chunk");
    value_.resize(value_.size() - 2);
    values_[key_] = std::move(value_);
    send_line("STORED");
  }

 private:
  std::string key_, value_;
  std::map<std::string, std::string> values_;
};
// [end]

// [snippet:int32-strings]
// One message per string_received, however the network split the bytes: each message
// is a 4-byte big-endian length, then that many bytes.
class Reverse : public torsion::Int32StringReceiver {
 public:
  Reverse() : torsion::Int32StringReceiver(/*max_length=*/64 * 1024) {}
  void string_received(std::string_view message) override {
    send_string(std::string(message.rbegin(), message.rend()));  // prefix + bytes
  }
};
// [end]

// [snippet:netstrings]
// Collects netstrings ("5:hello,"); anything else ends the connection.
class Collect : public torsion::NetstringReceiver {
 public:
  explicit Collect(std::vector<std::string>& got) : got_(got) {}
  void string_received(std::string_view s) override { got_.emplace_back(s); }

 private:
  std::vector<std::string>& got_;
};
// [end]

// [snippet:timeout-mixin]
// Drops a client that has sent nothing for 30 s, however much is written to it: the
// countdown restarts on input only (TimeoutFactory restarts it on writes too).
class Session : public torsion::LineReceiver, public torsion::TimeoutMixin {
 public:
  explicit Session(torsion::Scheduler& clock) : TimeoutMixin(clock, *this) {}
  void connection_made() override { set_timeout(30); }
  void data_received(std::string_view data) override {
    reset_timeout();  // input, and only input, is activity
    LineReceiver::data_received(data);
  }
  void line_received(std::string_view line) override { send_line(line); }
  void connection_lost(const torsion::Reason&) override { set_timeout(std::nullopt); }
};
// [end]

// [snippet:wrapping-factory]
// Counts the bytes its connections receive and refuses one host. allow() and wrap()
// are the two hooks; a ProtocolWrapper forwards every event and call it does not
// override.
class Metered : public torsion::WrappingFactory {
 public:
  using WrappingFactory::WrappingFactory;
  std::size_t bytes_in = 0;

 protected:
  bool allow(const torsion::Address& peer) override { return peer.host() != "192.0.2.66"; }
  std::unique_ptr<torsion::ProtocolWrapper> wrap(std::unique_ptr<torsion::Protocol> inner,
                                                 const torsion::Address& peer) override {
    return std::make_unique<Meter>(*this, std::move(inner), peer);
  }

 private:
  class Meter : public torsion::ProtocolWrapper {
   public:
    Meter(Metered& f, std::unique_ptr<torsion::Protocol> inner, torsion::Address peer)
        : ProtocolWrapper(f, std::move(inner), std::move(peer)), f_(f) {}
    void data_received(std::string_view data) override {
      f_.bytes_in += data.size();
      ProtocolWrapper::data_received(data);  // on to the wrapped protocol
    }

   private:
    Metered& f_;
  };
};
// [end]

// Feeds `input` to a fresh `P` through a StringTransport; returns what it wrote and
// whether it asked to close.
template <class P>
ProtocolRun run(std::string_view input, std::size_t chunk = 0) {
  StringTransport t;
  P protocol;
  t.connect(protocol);
  if (chunk == 0) chunk = input.size() + 1;
  for (std::size_t i = 0; i < input.size(); i += chunk) t.receive(input.substr(i, chunk));
  ProtocolRun out{t.value(), t.disconnecting(), std::nullopt};
  if (protocol.rejection()) out.rejection = protocol.rejection()->kind();
  t.disconnect();
  return out;
}

}  // namespace

ProtocolRun shout(std::string_view input) { return run<Shout>(input); }
ProtocolRun commands(std::string_view input) { return run<Commands>(input); }
ProtocolRun tolerant(std::string_view input, std::size_t chunk) {
  return run<Tolerant>(input, chunk);
}
ProtocolRun store(std::string_view input, std::size_t chunk) { return run<Store>(input, chunk); }
ProtocolRun reverse(std::string_view input, std::size_t chunk) {
  return run<Reverse>(input, chunk);
}

ProtocolRun netstrings(std::string_view input, std::vector<std::string>& got) {
  StringTransport t;
  Collect collect(got);
  t.connect(collect);
  t.receive(input);
  collect.send_string("hi");
  ProtocolRun out{t.value(), t.disconnecting(), std::nullopt};
  if (collect.rejection()) out.rejection = collect.rejection()->kind();
  t.disconnect();
  return out;
}

double session_dropped_after() {
  ManualClock clock;
  StringTransport t;
  Session session(clock);
  t.connect(session);
  clock.advance(20);
  t.receive("hi\r\n");  // input: the 30 s start again
  for (int i = 0; i < 29 && !t.aborted(); ++i) {
    session.send_line("news");  // written every second: not activity
    clock.advance(1);
  }
  if (t.aborted()) return -1;  // too early
  clock.advance(1);
  const double when = t.aborted() ? clock.seconds() : -1;
  t.disconnect(torsion::Reason(torsion::error::connection_aborted));  // as TCP would
  return when;
}

PolicyRun stacked_policies() {
  ManualClock clock;
  PolicyRun out;
  // [snippet:policies]
  auto commands = torsion::make_factory<Commands>();
  torsion::LineDeadlineFactory lines(commands, clock, 10, "\n");  // a whole line within 10 s
  torsion::TimeoutFactory idle(lines, clock, 300);         // 5 min without reads or writes
  torsion::PeerConnectionLimitFactory per_host(idle, 4);   // 4 per client host
  torsion::ConnectionLimitFactory total(per_host, 1000);   // 1000 in all
  torsion::ThrottlingFactory throttled(total, clock, {.read_bytes_per_second = 1 << 20});
  // listen with `throttled`: the outermost factory sees each connection first
  // [end]
  std::vector<std::unique_ptr<torsion::Protocol>> built;
  std::vector<std::unique_ptr<StringTransport>> transports;
  for (std::uint16_t port = 40000; port < 40005; ++port) {
    auto p = throttled.build_protocol(torsion::Address::ip("198.51.100.9", port));
    if (!p) continue;
    transports.push_back(std::make_unique<StringTransport>());
    transports.back()->connect(*p);
    built.push_back(std::move(p));
  }
  out.accepted = built.size();
  out.refused = per_host.refused_count();
  transports[0]->receive("hello\r\n");
  out.reply = transports[0]->value();
  transports[1]->receive("drip");  // never a whole line
  clock.advance(10);
  out.dripping_aborted = transports[1]->aborted();
  out.others_open = transports[0]->connected() && transports[2]->connected();
  out.read = throttled.total_read();
  for (auto& t : transports) t->disconnect(torsion::Reason(torsion::error::connection_aborted));
  built.clear();  // protocols go before their factories
  return out;
}

std::string metered(std::size_t& bytes_in, std::size_t& refused) {
  auto shouts = torsion::make_factory<Shout>();
  Metered metered(shouts);
  auto banned = metered.build_protocol(torsion::Address::ip("192.0.2.66", 1234));
  auto p = metered.build_protocol(torsion::Address::ip("192.0.2.1", 1234));
  StringTransport t;
  t.connect(*p);
  t.receive("abc\r\n");
  t.disconnect();
  bytes_in = metered.bytes_in;
  refused = metered.refused_count() + (banned ? 100 : 0);
  return t.value();
}

}  // namespace docs
