#include <memory>
#include <optional>

#include "docs/snippets/snippets.hpp"
#include "framework/deferred.hpp"
#include "framework/delayed_call.hpp"
#include "framework/protocol.hpp"
#include "framework/stream.hpp"
#include "framework/task.hpp"
#include "transports/tcp.hpp"
#include "transports/connect_stream.hpp"

namespace docs {
namespace {

class Echo : public torsion::Protocol {
 public:
  void data_received(std::string_view data) override { transport().write(data); }
};

// [snippet:coroutine-client]
torsion::Task<std::string> ask(torsion::Reactor& reactor, int port) {
  torsion::Stream s = co_await torsion::connect_stream(reactor, "127.0.0.1", port);
  s.write("hello\n");
  std::optional<std::string> line = co_await s.read_line(1024);  // nullopt at end of stream
  s.close();
  co_return line.value_or("<nothing>");
}
// [end]

// [snippet:read-to-end]
// Asks, sends its own end of stream, then takes every byte until the server closes.
torsion::Task<std::string> ask_all(torsion::Reactor& reactor, int port) {
  torsion::Stream s = co_await torsion::connect_stream(reactor, "127.0.0.1", port);
  s.write("hello\n");
  s.close_write();                             // our EOF: the echo server closes in turn
  co_return co_await s.read_to_end(1 << 20);  // at most 1 MiB, else ReadLimitError
}
// [end]

}  // namespace

std::string read_to_end_reply(torsion::Reactor& reactor) {
  auto echo = torsion::make_factory<Echo>();
  torsion::TcpListenOptions loopback;
  loopback.interface = "127.0.0.1";
  auto port = torsion::listen_tcp(reactor, 0, echo, loopback);
  std::string reply;
  ask_all(reactor, port->port()).deferred().add_both([&](torsion::Outcome<std::string> o) {
    reply = o.ok() ? o.value() : "failed: " + torsion::describe_error(o.error());
  });
  reactor.run_until([&] { return !reply.empty(); }, 10);
  return reply;
}

std::string deferred_and_coroutine(torsion::Reactor& reactor) {
  auto echo = torsion::make_factory<Echo>();
  torsion::TcpListenOptions loopback;
  loopback.interface = "127.0.0.1";
  auto port = torsion::listen_tcp(reactor, 0, echo, loopback);
  const int closed_port = [&] {
    auto p = torsion::listen_tcp(reactor, 0, echo, loopback);
    p->stop_listening();
    return static_cast<int>(p->port());
  }();

  std::string outcome;
  // [snippet:deferred-chain]
  torsion::connect_stream(reactor, "127.0.0.1", closed_port)
      .add_callback([](torsion::Stream) { return std::string("connected"); })
      .catch_error<torsion::ConnectionError>(
          [](const torsion::ConnectionError& e) { return "failed: " + e.reason().message(); })
      .add_callback([&outcome](std::string what) { outcome = what; });
  // [end]
  reactor.run_until([&] { return !outcome.empty(); }, 10);

  std::string reply;
  torsion::ScopedDelayedCall bound = reactor.call_later(10, [&reactor] { reactor.stop(); });
  // [snippet:run-a-task]
  // A program's main: run the loop until the Task ends, however it ends.
  ask(reactor, port->port()).deferred().add_both([&](torsion::Outcome<std::string> answer) {
    if (answer.ok())
      reply = answer.value();
    else  // the exception the Task threw: ConnectionError here for a refused connection
      reply = "failed: " + torsion::describe_error(answer.error());
    reactor.stop();
  });
  reactor.run();
  // [end]
  reactor.run_until([&] { return reactor.connection_count() == 0; }, 10);
  return outcome + " / " + reply;
}

std::string chained_in_place() {
  std::string seen;
  torsion::Deferred<int> d;
  // [snippet:in-place]
  d.add_callback([](int n) { return n * 2; });  // the steps run in order,
  d.add_callback([&seen](int n) {                // each on the last one's result
    seen = std::to_string(n);
    return n;
  });
  d.add_errback([](std::exception_ptr) { return 0; });  // an error from any step
  // [end]
  d.callback(21);
  return seen;
}

}  // namespace docs
