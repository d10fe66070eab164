// The echo client written as a coroutine: connect, send, read the echo back, close.
//
//   coro_echo_client [host port] [message]
//
// Without host and port it starts its own echo server on 127.0.0.1 (port 0) in the same
// reactor, so it runs anywhere. Way 3 of "Three ways to write the same client".
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "examples/cli.hpp"
#include "framework/reactor.hpp"
#include "framework/stream.hpp"
#include "framework/task.hpp"
#include "transports/tcp.hpp"
#include "transports/connect_stream.hpp"

using namespace torsion;

// --- the client ---------------------------------------------------------------------------
Task<std::string> echo_once(Reactor& reactor, std::string host, int port, std::string message) {
  Stream stream = co_await connect_stream(reactor, host, port);
  stream.write(message);
  co_await stream.drain();  // backpressure: wait if the write buffer is above its mark
  std::string reply = co_await stream.read_exactly(message.size());
  stream.close();
  co_return reply;
}

// --- a local echo server, for running the example alone -----------------------------------
Task<void> echo_connection(Stream stream) {
  for (std::string data; !(data = co_await stream.read_some()).empty();) stream.write(data);
}

int example_main(int argc, char** argv) {
  Reactor reactor;
  std::string host = "127.0.0.1";
  int port = 0;
  std::string message = "hello, torsion";
  StreamFactory echo_factory(reactor, [](Stream s) { echo_connection(std::move(s)); });
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

  int status = 1;
  echo_once(reactor, host, port, message).deferred().add_both([&](Outcome<std::string> reply) {
    if (reply.ok()) {
      std::printf("echoed: %s\n", reply.value().c_str());
      status = 0;
    } else {
      std::fprintf(stderr, "failed: %s\n", describe_error(reply.error()).c_str());
    }
    reactor.shutdown();  // closes the local server too, then run() returns
  });
  reactor.run();
  return status;
}

int main(int argc, char** argv) {
  return torsion::examples::run_main(argc, argv, example_main);
}
