// why_coroutine HOST PORT [--busy none|normal|idle] [--mib N] [--sndbuf BYTES]
//
// docs/why-a-reactor.md, step 5: bulk_write's client written as a C++20 coroutine. It
// connects with connect_stream, writes 40 MiB ("foo\n" repeated) in 64 KiB chunks,
// waiting with `co_await stream.drain()` whenever the transport's write buffer is above
// its high-water mark, then closes and waits for the end of the connection. The busy work
// (--busy, about 50 ms of CPU per call) and the output line are bulk_write's, so the two
// can be compared: wall time, user CPU time and how many busy iterations ran.
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "examples/why_timing.hpp"
#include "framework/reactor.hpp"
#include "framework/stream.hpp"
#include "framework/task.hpp"
#include "transports/tcp_stream.hpp"

using namespace torsion;

namespace {

using torsion::examples::calibrate;
using torsion::examples::spin;
using torsion::examples::user_cpu_seconds;

void set_sndbuf(Stream& stream, int sndbuf) {
  if (sndbuf > 0)
    setsockopt(stream.transport().native_handle(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
}

// [snippet:coroutine-client]
// Sends `bytes` of "foo\n" to host:port and returns once the connection has ended.
Task<void> send_all(Reactor& reactor, std::string host, int port, std::size_t bytes, int sndbuf) {
  Stream stream = co_await connect_stream(reactor, host, port);
  set_sndbuf(stream, sndbuf);
  std::string chunk;
  while (chunk.size() + 4 <= 64 * 1024) chunk += "foo\n";
  for (std::size_t sent = 0; sent + 4 <= bytes;) {
    const std::size_t n = std::min(chunk.size(), (bytes - sent) / 4 * 4);
    stream.write(std::string_view(chunk).substr(0, n));  // queued; never blocks
    sent += n;
    co_await stream.drain();  // suspended while the buffer is above its high-water mark
  }
  stream.close();               // flush, then close
  co_await stream.read_some();  // "" at the clean end; throws ConnectionError if lost
}
// [end]

struct Busy {
  Reactor& reactor;
  Priority priority;
  long spin_iterations;
  long iterations = 0;
  bool finished = false;

  void loop() {
    if (finished) return;
    spin(spin_iterations);
    ++iterations;
    reactor.call_soon([this] { loop(); }, priority);
  }
};

}  // namespace

int main(int argc, char** argv) {
  torsion::examples::TransferArgs args;
  if (!torsion::examples::parse_transfer_args(argc, argv, args)) return 2;
  const std::string& busy = args.busy;
  Reactor reactor;
  const auto bytes = static_cast<std::size_t>(args.mib * 1024 * 1024);
  Busy work{reactor, busy == "idle" ? Priority::idle : Priority::normal, calibrate(0.05)};
  int status = 0;
  const double wall_start = reactor.seconds();
  const double cpu_start = user_cpu_seconds();
  send_all(reactor, argv[1], std::atoi(argv[2]), bytes, args.sndbuf)
      .deferred()
      .add_both([&](Outcome<void> done) {
        if (!done.ok()) {
          std::fprintf(stderr, "failed: %s\n", describe_error(done.error()).c_str());
          status = 1;
        }
        work.finished = true;
        reactor.stop();
      });
  if (busy != "none") reactor.call_soon([&] { work.loop(); });
  reactor.run();
  std::printf("busy=%s bytes=%zu wall=%.2fs user_cpu=%.2fs busy_iterations=%ld\n", busy.c_str(),
              bytes, reactor.seconds() - wall_start, user_cpu_seconds() - cpu_start,
              work.iterations);
  return status;
}
