// port_forward LISTEN_PORT HOST PORT: forwards every TCP connection made to LISTEN_PORT
// (on every IPv4 interface) to HOST:PORT, with flow control in both directions, so a
// fast sender and a slow receiver never make it buffer more than a few hundred KiB per
// connection. See examples/port_forward.hpp for how.

#include <charconv>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

#include "examples/port_forward.hpp"

namespace {

bool parse_port(std::string_view text, int min, int& port) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  return ec == std::errc() && end == text.data() + text.size() && port >= min && port <= 65535;
}

}  // namespace

int main(int argc, char** argv) {
  int listen_port = 0, port = 0;
  if (argc != 4 || !parse_port(argv[1], 0, listen_port) || !parse_port(argv[3], 1, port)) {
    std::fprintf(stderr,
                 "usage: %s LISTEN_PORT HOST PORT\n"
                 "  forwards connections on LISTEN_PORT (0..65535) to HOST:PORT (1..65535)\n",
                 argc > 0 ? argv[0] : "port_forward");
    return 2;
  }
  try {
    torsion::Reactor reactor;
    torsion::examples::PortForwardFactory factory(reactor, argv[2], port);
    auto listening = torsion::listen_tcp(reactor, listen_port, factory);
    torsion::log(torsion::LogLevel::info, "port_forward: listening on port " +
                                              std::to_string(listening->port()) +
                                              ", forwarding to " + argv[2] + ":" + argv[3]);
    reactor.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "port_forward: %s\n", e.what());
    return 1;
  }
}
