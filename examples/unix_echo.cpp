// unix_echo: an echo server on a Unix socket; prints each client's credentials.
//   ./unix_echo [path]   (default /tmp/torsion-echo.sock; '@name' for the abstract namespace)
//   try: socat - UNIX-CONNECT:/tmp/torsion-echo.sock
#include <cstdio>
#include <string>

#include "examples/cli.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "transports/unix.hpp"

namespace {

class Echo final : public torsion::Protocol {
 public:
  void connection_made() override {
    if (auto cred = torsion::peer_credentials(transport()))
      std::printf("client pid %d uid %u gid %u\n", cred->pid, cred->uid, cred->gid);
    std::fflush(stdout);
  }
  void data_received(std::string_view data) override { transport().write(data); }
};

}  // namespace

int example_main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "/tmp/torsion-echo.sock";
  torsion::Reactor reactor;
  auto factory = torsion::make_factory<Echo>();
  auto port = torsion::listen_unix(reactor, path, factory);
  std::printf("echo on %s\n", port->get_host().to_string().c_str());
  std::fflush(stdout);
  std::fflush(stdout);
  reactor.run();
  return 0;
}

int main(int argc, char** argv) {
  return torsion::examples::run_main(argc, argv, example_main);
}
