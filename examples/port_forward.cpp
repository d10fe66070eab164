// port_forward [--buffered] LISTEN_PORT HOST PORT: forwards every TCP connection made to
// LISTEN_PORT (on every IPv4 interface) to HOST:PORT, with flow control in both
// directions, so a fast sender and a slow receiver never make it buffer more than a few
// hundred KiB per connection. Bytes move socket to socket with splice(2), never through
// this process; --buffered copies them through it instead (for comparison). See
// examples/port_forward.hpp for how.

#include <charconv>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

#include "examples/cli.hpp"
#include "examples/port_forward.hpp"
#include "framework/log.hpp"

int example_main(int argc, char** argv) {
  const bool buffered = argc > 1 && std::string_view(argv[1]) == "--buffered";
  if (buffered) {
    --argc;
    ++argv;
  }
  if (argc != 4) {
    std::fprintf(stderr,
                 "usage: %s [--buffered] LISTEN_PORT HOST PORT\n"
                 "  forwards connections on LISTEN_PORT (0..65535) to HOST:PORT (1..65535);\n"
                 "  --buffered copies the bytes through the process instead of splice(2)\n",
                 argc > 0 ? argv[0] : "port_forward");
    return 2;
  }
  const int listen_port = torsion::examples::port_arg(argv[1]);
  const int port = torsion::examples::port_arg(argv[3], 1);
  torsion::Reactor reactor;
  torsion::examples::PortForwardFactory factory(reactor, argv[2], port);
  factory.set_zero_copy(!buffered);
  auto listening = torsion::listen_tcp(reactor, listen_port, factory);
  torsion::log(torsion::LogLevel::info, "port_forward: listening on port " +
                                            std::to_string(listening->port()) +
                                            ", forwarding to " + argv[2] + ":" + argv[3]);
  reactor.run();
  return 0;
}

int main(int argc, char** argv) {
  return torsion::examples::run_main(argc, argv, example_main);
}
