// bulk_write HOST PORT [--busy none|normal|idle] [--mib N] [--sndbuf BYTES]
//
// The seed article's experiment: write 40 MiB ("foo\n" repeated 10*1024*1024 times)
// through a transport and close once all of it is flushed, while a busy-loop callback
// (about 50 ms of CPU per call, then it reschedules itself) runs at normal priority (as
// Twisted's callLater(0) would) or at idle priority (GLib's idle sources). Prints wall
// time, user CPU time and how many busy iterations ran.
//
// Against `discard_server --rate 20000000`, --busy idle finishes about as fast as
// --busy none while still doing useful work while it waits; --busy normal is slowed once
// the socket buffers hold less than 50 ms of the transfer (--sndbuf, and discard_server's
// --rcvbuf, make them small; Linux's loopback buffers otherwise absorb the busy periods).
#include <sys/socket.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include "examples/why_timing.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "transports/tcp.hpp"

namespace {

using torsion::examples::calibrate;
using torsion::examples::spin;
using torsion::examples::user_cpu_seconds;

struct Run {
  torsion::Reactor& reactor;
  std::string busy;
  std::size_t bytes;
  long spin_iterations;
  int sndbuf = 0;
  long busy_iterations = 0;
  bool finished = false;
  int status = 0;

  void busy_loop() {
    if (finished) return;
    spin(spin_iterations);
    ++busy_iterations;
    reactor.call_soon([this] { busy_loop(); },
                      busy == "idle" ? torsion::Priority::idle : torsion::Priority::normal);
  }
};

class Writer : public torsion::Protocol {
 public:
  explicit Writer(Run& run) : run_(run) {}
  void connection_made() override {
    if (run_.sndbuf > 0)
      setsockopt(transport().native_handle(), SOL_SOCKET, SO_SNDBUF, &run_.sndbuf,
                 sizeof run_.sndbuf);
    std::string payload;
    payload.reserve(run_.bytes);
    while (payload.size() + 4 <= run_.bytes) payload += "foo\n";
    transport().write(std::move(payload));  // moved in: no copy
    transport().lose_connection();          // closes once every byte is flushed
  }
  void connection_lost(const torsion::Reason& reason) override {
    if (!reason.clean()) {
      std::fprintf(stderr, "connection lost: %s\n", reason.message().c_str());
      run_.status = 1;
    }
    run_.finished = true;
    run_.reactor.stop();
  }

 private:
  Run& run_;
};

class Factory : public torsion::ClientFactory {
 public:
  explicit Factory(Run& run) : run_(run) {}
  std::unique_ptr<torsion::Protocol> build_protocol(const torsion::Address&) override {
    return std::make_unique<Writer>(run_);
  }
  void client_connection_failed(torsion::Connector&, const torsion::Reason& reason) override {
    std::fprintf(stderr, "connection failed: %s\n", reason.message().c_str());
    run_.status = 1;
    run_.reactor.stop();
  }

 private:
  Run& run_;
};

}  // namespace

int main(int argc, char** argv) {
  torsion::examples::TransferArgs args;
  if (!torsion::examples::parse_transfer_args(argc, argv, args)) return 2;
  const std::string& busy = args.busy;
  torsion::Reactor reactor;
  Run run{reactor, busy, static_cast<std::size_t>(args.mib * 1024 * 1024), calibrate(0.05),
          args.sndbuf};
  Factory factory(run);
  const double wall_start = reactor.seconds();
  const double cpu_start = user_cpu_seconds();
  torsion::connect_tcp(reactor, argv[1], std::atoi(argv[2]), factory);
  if (busy != "none") reactor.call_soon([&] { run.busy_loop(); });
  reactor.run();
  std::printf("busy=%s bytes=%zu wall=%.2fs user_cpu=%.2fs busy_iterations=%ld\n", busy.c_str(),
              run.bytes, reactor.seconds() - wall_start, user_cpu_seconds() - cpu_start,
              run.busy_iterations);
  return run.status;
}
