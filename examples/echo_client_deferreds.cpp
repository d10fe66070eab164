// The echo client written with Deferred chains: each step returns the Deferred of the
// next, and one errback at the end handles a failure anywhere.
//
//   echo_client_deferreds [host port] [message]
//
// Without host and port it starts its own echo server. Way 2 of "Three ways to write
// the same client".
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "examples/cli.hpp"
#include "framework/deferred.hpp"
#include "framework/reactor.hpp"
#include "framework/stream.hpp"
#include "transports/tcp.hpp"
#include "transports/connect_stream.hpp"

using namespace torsion;

// --- the client ---------------------------------------------------------------------------
Deferred<std::string> echo_once(Reactor& reactor, const std::string& host, int port,
                                const std::string& message) {
  auto stream = std::make_shared<Stream>();  // shared by the steps of the chain
  return connect_stream(reactor, host, port)
      .add_callback([stream, message](Stream s) {
        *stream = std::move(s);
        stream->write(message);
        return stream->read_exactly(message.size());
      })
      .add_callback([stream](std::string reply) {
        stream->close();
        return reply;
      });
}

// --- a local echo server, for running the example alone -----------------------------------
void echo_connection(std::shared_ptr<Stream> stream) {
  stream->read_some().add_callback([stream](std::string data) {
    if (data.empty()) return;  // the client closed
    stream->write(data);
    echo_connection(stream);
  });
}

int example_main(int argc, char** argv) {
  Reactor reactor;
  std::string host = "127.0.0.1";
  int port = 0;
  std::string message = "hello, torsion";
  StreamFactory echo_factory(reactor, [](Stream s) {
    echo_connection(std::make_shared<Stream>(std::move(s)));
  });
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
  echo_once(reactor, host, port, message)
      .add_callback([&](std::string reply) {
        std::printf("echoed: %s\n", reply.c_str());
        status = 0;
      })
      .add_errback([](std::exception_ptr error) {
        std::fprintf(stderr, "failed: %s\n", describe_error(error).c_str());
      })
      .add_callback([&] { reactor.shutdown(); });
  reactor.run();
  return status;
}

int main(int argc, char** argv) {
  return torsion::examples::run_main(argc, argv, example_main);
}
