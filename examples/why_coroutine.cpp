// why_coroutine HOST PORT [--busy none|normal|idle] [--mib N] [--sndbuf BYTES] [--jobs N]
//                         [--slice MS]
//
// docs/why-a-reactor.md, step 5: bulk_write's client written as a C++20 coroutine. It
// connects with connect_stream, writes 8 MiB ("foo\n" repeated) in 64 KiB chunks,
// waiting with `co_await stream.drain()` whenever the transport's write buffer is above
// its high-water mark, then closes and waits for the end of the connection. The busy work
// (--busy, --jobs, --slice), the defaults and the output line are bulk_write's (see its
// header for the arithmetic), so the two can be compared. No --trace: only bulk_write
// records one.
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "examples/busy_jobs.hpp"
#include "examples/cli.hpp"
#include "examples/why_timing.hpp"
#include "framework/reactor.hpp"
#include "framework/stream.hpp"
#include "framework/task.hpp"
#include "transports/connect_stream.hpp"

using namespace torsion;

namespace {

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
  stream.close_write();         // EOF once everything is handed to the kernel
  co_await stream.read_some();  // "" once the reader has read it all and closed
}
// [end]

}  // namespace

int example_main(int argc, char** argv) {
  examples::TransferArgs args;
  if (!examples::parse_transfer_args(argc, argv, args)) return 2;
  if (!args.trace.empty()) {
    std::fprintf(stderr, "--trace: only bulk_write records a trace\n");
    return 2;
  }
  Reactor reactor;
  const auto bytes = static_cast<std::size_t>(args.mib * 1024 * 1024) / 4 * 4;
  examples::BusyJobs jobs(reactor, examples::busy_priority(args.busy), args.jobs,
                          args.slice_ms / 1000, nullptr);
  int status = 0;
  const double wall_start = reactor.seconds();
  const double cpu_start = examples::cpu_seconds();
  send_all(reactor, argv[1], examples::port_arg(argv[2], 1), bytes, args.sndbuf)
      .deferred()
      .add_both([&](Outcome<void> done) {
        if (!done.ok()) {
          std::fprintf(stderr, "failed: %s\n", describe_error(done.error()).c_str());
          status = 1;
        }
        reactor.stop();
      });
  if (args.busy != "none") jobs.start();
  reactor.run();
  jobs.stop();
  const double wall = reactor.seconds() - wall_start;
  const double cpu = examples::cpu_seconds() - cpu_start;
  examples::print_result(args.busy, bytes, wall, cpu, jobs);
  return status;
}

int main(int argc, char** argv) {
  return torsion::examples::run_main(argc, argv, example_main);
}
