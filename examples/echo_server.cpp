// echo_server [--port N] [--interface ADDR] [--systemd]: echoes every byte back to its
// sender. Prints "listening on ADDR:PORT" first, so scripts can find a port picked by the
// kernel. With --systemd it serves the first socket systemd (or systemd-socket-activate)
// passed instead of binding one, and tells a Type=notify unit when it is ready.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "examples/cli.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "transports/systemd.hpp"
#include "transports/tcp.hpp"

namespace {

class Echo : public torsion::Protocol {
  void data_received(std::string_view data) override { transport().write(data); }
};

}  // namespace

int example_main(int argc, char** argv) {
  int port = 0;
  bool systemd = false;
  torsion::TcpListenOptions options;
  options.interface = "127.0.0.1";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      port = torsion::examples::port_arg(argv[++i]);
    } else if (std::strcmp(argv[i], "--interface") == 0 && i + 1 < argc) {
      options.interface = argv[++i];
    } else if (std::strcmp(argv[i], "--systemd") == 0) {
      systemd = true;
    } else {
      std::fprintf(stderr, "usage: %s [--port N] [--interface ADDR] [--systemd]\n", argv[0]);
      return 2;
    }
  }
  torsion::Reactor reactor;
  auto factory = torsion::make_factory<Echo>();
  auto listening = systemd ? torsion::listen_systemd(reactor, 0, factory)
                          : torsion::listen_tcp(reactor, port, factory, options);
  if (systemd) torsion::notify_systemd_ready(reactor);
  std::printf("listening on %s\n", listening->get_host().to_string().c_str());
  std::fflush(stdout);
  reactor.run();
  return 0;
}

int main(int argc, char** argv) {
  return torsion::examples::run_main(argc, argv, example_main);
}
