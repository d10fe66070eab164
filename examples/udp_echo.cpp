// udp_echo: echoes every UDP datagram back to its sender.
//   ./udp_echo [port]          (default 9999; try: echo hi | nc -u -w1 127.0.0.1 9999)
#include <cstdio>
#include <cstdlib>
#include <string>

#include "examples/cli.hpp"
#include "framework/reactor.hpp"
#include "transports/udp.hpp"

namespace {

class Echo final : public torsion::DatagramProtocol {
 public:
  void started_listening() override {
    std::printf("udp echo on %s\n", transport().get_host().to_string().c_str());
    std::fflush(stdout);
    std::fflush(stdout);
  }
  void datagram_received(std::string_view data, const torsion::Address& from) override {
    transport().write(data, from);
  }
};

}  // namespace

int example_main(int argc, char** argv) {
  const int port = argc > 1 ? torsion::examples::port_arg(argv[1]) : 9999;
  torsion::Reactor reactor;
  Echo echo;
  torsion::UdpListenOptions options;
  options.interface = "127.0.0.1";
  auto endpoint = torsion::listen_udp(reactor, port, echo, options);
  reactor.run();
  return 0;
}

int main(int argc, char** argv) {
  return torsion::examples::run_main(argc, argv, example_main);
}
