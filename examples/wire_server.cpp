// wire_server [--port N] [--interface ADDR]: the small RFC services on consecutive ports
// from N (default 10007): echo N, discard N+1, chargen N+2, daytime N+3, qotd N+4.
// With --port 0 the kernel picks each port; they are printed at start.
//
//   $ ./wire_server --port 10007 &
//   $ nc localhost 10010      # daytime
//   Thu Nov 26 05:43:04 2026

#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "examples/cli.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "protocols/wire.hpp"
#include "transports/tcp.hpp"

namespace wire_example {

// The factories, in port order; they must outlive the ports.
struct WireServices {
  torsion::FunctionFactory<> echo = torsion::make_factory<torsion::Echo>();
  torsion::FunctionFactory<> discard = torsion::make_factory<torsion::Discard>();
  torsion::FunctionFactory<> chargen = torsion::make_factory<torsion::Chargen>();
  torsion::FunctionFactory<> daytime = torsion::make_factory<torsion::Daytime>();
  torsion::FunctionFactory<> qotd = torsion::make_factory<torsion::Qotd>(
      std::string("The best way to predict the future is to invent it."));

  struct Listening {
    std::string name;
    std::shared_ptr<torsion::ListeningPort> port;
  };
  std::vector<Listening> ports;

  // Listens on base, base+1, ... (every one on port 0 if base is 0).
  void listen(torsion::Reactor& reactor, int base, const std::string& interface) {
    torsion::TcpListenOptions options;
    options.interface = interface;
    const std::pair<const char*, torsion::Factory*> services[] = {{"echo", &echo},
                                                                  {"discard", &discard},
                                                                  {"chargen", &chargen},
                                                                  {"daytime", &daytime},
                                                                  {"qotd", &qotd}};
    int offset = 0;
    for (const auto& [name, factory] : services) {
      const int port = base == 0 ? 0 : base + offset++;
      ports.push_back({name, torsion::listen_tcp(reactor, port, *factory, options)});
    }
  }
};

}  // namespace wire_example

#ifndef TORSION_EXAMPLE_NO_MAIN
int example_main(int argc, char** argv) {
  int base = 10007;
  std::string interface;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--port" && i + 1 < argc) {
      base = torsion::examples::port_arg(argv[++i]);
    } else if (arg == "--interface" && i + 1 < argc) {
      interface = argv[++i];
    } else {
      std::cerr << "usage: wire_server [--port N] [--interface ADDR]\n";
      return 2;
    }
  }
  torsion::Reactor reactor;
  wire_example::WireServices services;
  services.listen(reactor, base, interface);
  for (const auto& l : services.ports)
    std::cout << l.name << " on port " << l.port->port() << std::endl;
  reactor.run();
  return 0;
}

int main(int argc, char** argv) {
  return torsion::examples::run_main(argc, argv, example_main);
}
#endif
