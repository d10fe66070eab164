// bulk_write HOST PORT [--busy none|normal|idle] [--mib N] [--sndbuf BYTES] [--jobs N]
//                      [--slice MS] [--trace FILE]
//
// The seed article's experiment: write "foo\n" * 2 * 1024 * 1024 (8 MiB, the size of its
// Twisted example) through a transport to a slow reader while busy work runs in the same
// reactor, at normal priority (as Twisted's callLater(0)) or at idle priority (GLib's idle
// sources), or not at all. The run ends when the reader has read every byte and closed
// (the writer sends EOF once everything is handed to the kernel). Prints wall time, CPU
// time (user + system), the busy slices' CPU and its share of the wall time (busy_share),
// and how many slices ran. --trace FILE records the bytes handed to the kernel and every
// busy slice over time (examples/plot_trace.py draws it).
//
// The busy work: --jobs 20 jobs, each a chain of --slice 20 ms slices (each runs until
// 20 ms of wall-clock time have passed, on any CPU, then queues the next with call_soon).
//
// The setup, and why the contrast holds by construction (the defaults, and what
// examples/demo.sh and tests/benchmarks/seed_check.sh run):
//   reader   discard_server --rate 4000000 --rcvbuf 212992: 4 MB/s, so 8 MiB take 2.10 s.
//   buffers  --sndbuf 212992 here, SO_RCVBUF 212992 there. Linux doubles both (425984
//            bytes each) and 212992 is the default net.core.wmem_max/rmem_max, so every
//            Linux grants them. Together they hold about B = 850 KB of payload (the first
//            write hands the kernel 818-850 KB on Linux 6.x loopback): 210 ms of reading.
//            The kernel wakes the writer once about 393 KB are free (later writes hand over
//            393 KB each), so at each wake-up the buffers still hold about 460 KB: 115 ms.
//   idle     an idle slice starts only when the socket can take nothing and nothing else
//            is ready, so the writer is back at the socket at most one slice, 20 ms, after
//            the wake-up, while 115 ms of data remain: the reader never waits, with 95 ms
//            to spare for a loaded machine's scheduling delays. The work still gets nearly
//            all the time, since each write costs the writer microseconds.
//   normal   every job has one slice queued at each turn of the loop, and the reactor runs
//            all the normal callbacks queued before a turn before it looks at I/O again:
//            each turn is 20 x 20 ms = 400 ms of work without I/O. Between two turns the
//            writer can hand the kernel at most what it holds, B = 850 KB, so the reader
//            gets at most 850 KB per 400 ms, 2.1 MB/s, half its rate: the transfer must
//            take at least about twice as long (in practice about 5x, since Asio needs
//            more than one turn per refill). The slices are clock-bound, so no CPU is fast
//            enough to escape this.
// Why several jobs: with one job, normal priority delays a write by one to two slices and
// idle priority by up to one, only a factor of two apart, so a slice short enough for idle
// to be safe leaves normal inside the buffers some of the time (an earlier single 50 ms
// job gave 2.3 s or 3.5 s at random).
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "examples/busy_jobs.hpp"
#include "examples/cli.hpp"
#include "examples/why_timing.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "transports/socket_options.hpp"
#include "transports/tcp.hpp"

namespace {

using torsion::examples::BusyJobs;
using torsion::examples::TransferTrace;

struct Run {
  torsion::Reactor& reactor;
  std::size_t bytes;
  int sndbuf;
  bool busy = false;  // whether to start the jobs
  BusyJobs* jobs = nullptr;
  TransferTrace* trace = nullptr;
  torsion::Transport* transport = nullptr;  // while connected, for the trace
  std::size_t handed_at_end = 0;            // once the connection is gone
  int status = 0;

  // Bytes handed to the kernel so far.
  std::size_t handed() const {
    return transport != nullptr ? bytes - transport->buffer_size() : handed_at_end;
  }
};

class Writer : public torsion::Protocol {
 public:
  explicit Writer(Run& run) : run_(run) {}
  void connection_made() override {
    if (run_.sndbuf > 0) torsion::set_send_buffer_size(transport(), run_.sndbuf);
    run_.transport = &transport();
    if (run_.busy) run_.jobs->start();  // the work begins with the transfer
    std::string payload;
    payload.reserve(run_.bytes);
    while (payload.size() + 4 <= run_.bytes) payload += "foo\n";
    transport().write(std::move(payload));  // moved in: no copy
    transport().lose_write_connection();    // EOF once every byte is handed to the kernel;
                                            // the reader closes when it has read them all
  }
  void connection_lost(const torsion::Reason& reason) override {
    run_.handed_at_end = run_.handed();
    run_.transport = nullptr;
    if (!reason.clean()) {
      std::fprintf(stderr, "connection ended: %s\n", reason.message().c_str());
      run_.status = 1;
    }
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

int example_main(int argc, char** argv) {
  torsion::examples::TransferArgs args;
  if (!torsion::examples::parse_transfer_args(argc, argv, args)) return 2;
  torsion::Reactor reactor;
  Run run{reactor, static_cast<std::size_t>(args.mib * 1024 * 1024) / 4 * 4, args.sndbuf};
  TransferTrace trace(reactor, [&run] { return run.handed(); });
  BusyJobs jobs(reactor, torsion::examples::busy_priority(args.busy), args.jobs,
                args.slice_ms / 1000, args.trace.empty() ? nullptr : &trace);
  run.jobs = &jobs;
  run.busy = args.busy != "none";
  Factory factory(run);
  const double wall_start = reactor.seconds();
  const double cpu_start = torsion::examples::cpu_seconds();
  if (!args.trace.empty()) trace.start();
  torsion::connect_tcp(reactor, argv[1], torsion::examples::port_arg(argv[2], 1), factory);
  reactor.run();
  jobs.stop();
  const double wall = reactor.seconds() - wall_start;
  const double cpu = torsion::examples::cpu_seconds() - cpu_start;
  if (!args.trace.empty()) {
    trace.stop();
    if (!trace.write(args.trace, torsion::examples::trace_header("bulk_write", args, run.bytes)))
      run.status = 1;
  }
  torsion::examples::print_result(args.busy, run.bytes, wall, cpu, jobs);
  return run.status;
}

int main(int argc, char** argv) {
  return torsion::examples::run_main(argc, argv, example_main);
}
