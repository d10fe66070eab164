#pragma once
/// \file
/// The busy work and the --trace recorder of the two torsion clients of
/// docs/why-a-reactor.md (examples/bulk_write.cpp, examples/why_coroutine.cpp), so that both
/// load the reactor the same way and record the same things. examples/bulk_write.cpp's
/// header says why the work comes as several jobs of short slices.

#include <cstddef>
#include <cstdio>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "examples/why_timing.hpp"
#include "framework/delayed_call.hpp"
#include "framework/reactor.hpp"

namespace torsion::examples {

/// What a run did over time, for --trace: the bytes handed to the kernel (sampled every
/// `interval` seconds and around every busy slice) and each busy slice, in seconds since
/// the trace was made.
class TransferTrace {
 public:
  /// A trace that reads the bytes handed to the kernel from `handed` (called on the
  /// reactor's thread). Records nothing until start().
  TransferTrace(Reactor& reactor, std::function<std::size_t()> handed)
      : reactor_(reactor), handed_(std::move(handed)), origin_(reactor.seconds()) {}

  /// Samples now and then every `interval` seconds until stop().
  void start(double interval = 0.002) {
    interval_ = interval;
    tick();
  }
  /// Takes a last sample and stops the timer.
  void stop() {
    timer_.cancel();
    sample();
  }
  /// Records the bytes handed to the kernel so far.
  void sample() { bytes_.emplace_back(reactor_.seconds() - origin_, handed_()); }
  /// Records a busy slice that ran from `start` to `end` (reactor seconds).
  void busy(double start, double end) { busy_.emplace_back(start - origin_, end - origin_); }

  /// Writes the trace to `path`: a first line "# " + `header`, then "b SECONDS BYTES" per
  /// sample and "s START END" per busy slice. Returns false (with a message) on failure.
  bool write(const std::string& path, const std::string& header) const {
    std::FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr) {
      std::perror(path.c_str());
      return false;
    }
    std::fprintf(f, "# %s\n", header.c_str());
    for (const auto& [t, n] : bytes_) std::fprintf(f, "b %.6f %zu\n", t, n);
    for (const auto& [a, b] : busy_) std::fprintf(f, "s %.6f %.6f\n", a, b);
    return std::fclose(f) == 0;
  }

 private:
  void tick() {
    sample();
    timer_ = reactor_.call_later(interval_, [this] { tick(); });
  }

  Reactor& reactor_;
  std::function<std::size_t()> handed_;
  double origin_;
  double interval_ = 0.002;
  DelayedCall timer_;
  std::vector<std::pair<double, std::size_t>> bytes_;
  std::vector<std::pair<double, double>> busy_;
};

/// `jobs` background jobs on one reactor: each runs a slice of CPU-bound work lasting
/// `slice` seconds of wall-clock time (busy_for), then queues its next slice with
/// call_soon at `priority`, until stop(). Counts the slices and the CPU they got.
class BusyJobs {
 public:
  /// Jobs that do nothing until start(); `trace` (may be null) hears of every slice.
  BusyJobs(Reactor& reactor, Priority priority, int jobs, double slice, TransferTrace* trace)
      : reactor_(reactor), priority_(priority), jobs_(jobs), slice_(slice), trace_(trace) {}

  /// Queues every job's first slice.
  void start() {
    for (int i = 0; i < jobs_; ++i) queue();
  }
  /// No slice runs after this.
  void stop() { stopped_ = true; }

  /// Slices run so far.
  long slices() const { return slices_; }
  /// CPU seconds (this thread's) used inside the slices.
  double cpu() const { return cpu_; }

 private:
  void queue() {
    reactor_.call_soon([this] { run_slice(); }, priority_);
  }
  void run_slice() {
    if (stopped_) return;
    if (trace_ != nullptr) trace_->sample();
    const double start = reactor_.seconds();
    const double cpu_start = thread_cpu_seconds();
    busy_for(slice_);
    cpu_ += thread_cpu_seconds() - cpu_start;
    ++slices_;
    if (trace_ != nullptr) trace_->busy(start, reactor_.seconds());
    queue();
  }

  Reactor& reactor_;
  Priority priority_;
  int jobs_;
  double slice_;
  TransferTrace* trace_;
  bool stopped_ = false;
  long slices_ = 0;
  double cpu_ = 0;
};

/// The priority named by --busy ("normal" or "idle"; "none" runs no jobs).
inline Priority busy_priority(const std::string& busy) {
  return busy == "idle" ? Priority::idle : Priority::normal;
}

/// Prints the result line of a run, the same for both clients:
/// "busy=MODE bytes=N wall=Ss cpu=Ss busy_cpu=Ss busy_share=F busy_slices=N", where cpu is
/// the process's user + system time and busy_share the busy slices' CPU per second of wall
/// time (the share of one core the work got).
inline void print_result(const std::string& busy, std::size_t bytes, double wall, double cpu,
                         const BusyJobs& jobs) {
  std::printf(
      "busy=%s bytes=%zu wall=%.3fs cpu=%.3fs busy_cpu=%.3fs busy_share=%.3f busy_slices=%ld\n",
      busy.c_str(), bytes, wall, cpu, jobs.cpu(), wall > 0 ? jobs.cpu() / wall : 0.0,
      jobs.slices());
}

/// The first line of a --trace file: what ran, with which setup.
inline std::string trace_header(const char* program, const TransferArgs& args, std::size_t bytes) {
  char line[256];
  std::snprintf(line, sizeof line, "%s busy=%s bytes=%zu jobs=%d slice_ms=%g sndbuf=%d", program,
                args.busy.c_str(), bytes, args.jobs, args.slice_ms, args.sndbuf);
  return line;
}

}  // namespace torsion::examples
