// discard_server [--port N] [--rate BYTES_PER_SECOND] [--rcvbuf BYTES]: reads and drops everything,
// and prints how many bytes each connection sent when it closes. With --rate it reads no faster
// than that: after each read it stops reading (pause_producing) for as long as the bytes "cost" at
// that rate, then reads again (resume_producing from call_later). A stand-in for the distant, slow
// host of the seed article.
//
// When it comes back late (a loaded machine did not run it on time), it may catch up on at most
// 20 ms of lost reading: its own scheduling delays then do not slow it down, while a writer that
// leaves it without data for longer than that still costs it the time (a bucket of 20 ms).
#include <sys/socket.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "examples/cli.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "transports/tcp.hpp"

namespace {

// The most reading time a late reader may make up for (see the file comment).
constexpr double catch_up = 0.02;

class Discard : public torsion::Protocol {
 public:
  Discard(torsion::Reactor& reactor, double rate, int rcvbuf)
      : reactor_(reactor), rate_(rate), rcvbuf_(rcvbuf) {}

  void connection_made() override {
    if (rcvbuf_ > 0)
      setsockopt(transport().native_handle(), SOL_SOCKET, SO_RCVBUF, &rcvbuf_, sizeof rcvbuf_);
  }

  void data_received(std::string_view data) override {
    total_ += data.size();
    if (rate_ <= 0) return;
    // Bytes beyond what the rate allows so far are paid for by not reading for a while.
    const double now = reactor_.seconds();
    if (next_free_ < now - catch_up) next_free_ = now - catch_up;
    next_free_ += static_cast<double>(data.size()) / rate_;
    if (next_free_ > now) {
      transport().pause_producing();
      resume_ = reactor_.call_later(next_free_ - now, [this] { transport().resume_producing(); });
    }
  }

  void connection_lost(const torsion::Reason& reason) override {
    resume_.cancel();
    std::printf("%s sent %zu bytes (%s)\n", transport().get_peer().to_string().c_str(), total_,
                reason.message().c_str());
    std::fflush(stdout);
  }

 private:
  torsion::Reactor& reactor_;
  double rate_;
  int rcvbuf_;
  double next_free_ = 0;
  std::size_t total_ = 0;
  torsion::DelayedCall resume_;
};

}  // namespace

int example_main(int argc, char** argv) {
  int port = 0;
  double rate = 0;
  int rcvbuf = 0;
  torsion::TcpListenOptions options;
  options.interface = "127.0.0.1";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      port = torsion::examples::port_arg(argv[++i]);
    } else if (std::strcmp(argv[i], "--rate") == 0 && i + 1 < argc) {
      rate = std::atof(argv[++i]);
    } else if (std::strcmp(argv[i], "--rcvbuf") == 0 && i + 1 < argc) {
      rcvbuf = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--port N] [--rate BYTES_PER_SECOND] [--rcvbuf BYTES]\n",
                   argv[0]);
      return 2;
    }
  }
  torsion::Reactor reactor;
  torsion::FunctionFactory<> factory(
      [&](const torsion::Address&) { return std::make_unique<Discard>(reactor, rate, rcvbuf); });
  auto listening = torsion::listen_tcp(reactor, port, factory, options);
  std::printf("listening on %s\n", listening->get_host().to_string().c_str());
  std::fflush(stdout);
  reactor.run();
  return 0;
}

int main(int argc, char** argv) {
  return torsion::examples::run_main(argc, argv, example_main);
}
