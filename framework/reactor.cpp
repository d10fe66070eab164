#include "framework/reactor.hpp"
#include "framework/io_backend.hpp"

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <deque>
#include <exception>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "framework/deferred.hpp"
#include "framework/detail/tracked.hpp"
#include "framework/detail/turn.hpp"
#include "framework/listening_port.hpp"
#include "framework/log.hpp"

namespace torsion {
namespace {

constexpr double kNever = std::numeric_limits<double>::infinity();

template <class F>
void invoke_logged(F& fn, const char* what) {
  try {
    fn();
  } catch (const std::exception& e) {
    log(LogLevel::error, std::string("unhandled exception in ") + what + ": " + e.what());
  } catch (...) {
    log(LogLevel::error, std::string("unhandled non-standard exception in ") + what);
  }
}

// Saturates: a time past what the clock can count (about 292 years of nanoseconds, or
// infinity) is time_point::max(), which Asio waits for without overflowing, and a time
// before the clock's epoch is the epoch, which is past and so fires at once.
std::chrono::steady_clock::time_point to_time_point(double seconds) {
  using namespace std::chrono;
  using Clock = steady_clock;
  constexpr double limit = 0.99 * static_cast<double>(Clock::duration::max().count()) *
                           Clock::period::num / Clock::period::den;
  if (!(seconds < limit)) return Clock::time_point::max();
  if (!(seconds > 0)) return Clock::time_point{};
  return Clock::time_point(ceil<Clock::duration>(duration<double>(seconds)));
}

}  // namespace

struct Reactor::Impl {
  // Declared first so that it outlives the io_context, whose destruction may destroy
  // handlers that own connections.
  detail::TrackedList connections;
  // One thread touches this reactor's sockets and timers: Asio's per-descriptor locks are
  // not needed. The scheduler keeps its lock, so call_from_thread (a post) stays safe.
  asio::io_context io{ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  asio::steady_timer timer{io};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;

  std::vector<std::function<void()>> ready[2];    // high, normal: filled by call_soon
  std::vector<std::function<void()>> running[2];  // the snapshot being run
  std::deque<std::function<void()>> idle;
  bool drain_posted = false;
  bool stop_requested = false;
  bool running_loop = false;
  // The thread in run() or run_until(), for the debug-build thread check; none otherwise.
  std::atomic<std::thread::id> loop_thread{};
  bool blocking = false;  // inside io.run(): an idle callback must interrupt it
  double armed = kNever;

  // Shutdown and signals (see Reactor::shutdown).
  enum class Shutdown { idle, before, during, after, finished };
  struct Trigger {
    std::uint64_t id;
    ShutdownPhase phase;
    std::function<Deferred<void>()> fn;
  };
  std::vector<Trigger> triggers;
  std::uint64_t next_trigger_id = 1;
  std::vector<std::weak_ptr<ListeningPort>> ports;
  Shutdown shutdown = Shutdown::idle;
  std::uint64_t shutdown_generation = 0;  // stale shutdown callbacks compare against it
  bool during_done = false;
  bool aborted = false;
  DelayedCall shutdown_poll;
  double grace = 5.0;
  bool handle_signals = true;
  int last_signal = 0;
  std::optional<asio::signal_set> signals;

  // Forgets a finished (or, with `force`, an interrupted) shutdown, so the reactor can
  // run and shut down again.
  void end_shutdown(bool force) {
    if (shutdown == Shutdown::idle || (!force && shutdown != Shutdown::finished)) return;
    shutdown = Shutdown::idle;
    ++shutdown_generation;
    shutdown_poll.cancel();
  }

  void post_drain() {
    if (drain_posted) return;
    drain_posted = true;
    asio::post(io, [this] { drain(); });
  }

  // Runs a snapshot of the high then normal queues: what is queued meanwhile waits for
  // the next turn, so a callback that re-queues itself cannot starve I/O.
  void drain() {
    // drain_posted stays true while the snapshot runs, so that callbacks queued meanwhile
    // are posted behind whatever I/O became ready in the meantime.
    for (int p = 0; p < 2; ++p) std::swap(ready[p], running[p]);
    const detail::TurnScope turn;  // the batch is one turn (framework/detail/turn.hpp)
    for (auto& batch : running) {
      for (auto& cb : batch) invoke_logged(cb, "a call_soon callback");
      batch.clear();
    }
    drain_posted = false;
    if (!ready[0].empty() || !ready[1].empty()) post_drain();
  }
};

const char* io_backend() noexcept {
#if defined(ASIO_HAS_IO_URING_AS_DEFAULT)
  return "io_uring";
#else
  return "epoll";
#endif
}

// The io_context is where Asio opens its io_uring ring (-Dio_uring=true). Asio has no
// fallback to epoll within one build, so a kernel that refuses io_uring (too old, disabled
// by kernel.io_uring_disabled, or blocked by a seccomp profile) fails every Reactor; the
// exception says so instead of Asio's bare "io_uring_queue_init: Operation not permitted".
Reactor::Reactor()
#if defined(ASIO_HAS_IO_URING_AS_DEFAULT)
    try
#endif
    : impl_(std::make_unique<Impl>()) {
  timers_.now = [this] { return seconds(); };
  timers_.on_earlier_deadline = [this](double when) {
    Impl& d = *impl_;
    if (when >= d.armed) return;
    d.armed = when;
    d.timer.expires_at(to_time_point(when));
    d.timer.async_wait([this](const std::error_code& ec) {
      if (ec == asio::error::operation_aborted) return;
      Impl& dd = *impl_;
      dd.armed = kNever;
      const detail::TurnScope turn;
      timers_.run_due(seconds());
      if (!timers_.empty()) timers_.on_earlier_deadline(timers_.next_deadline());
    });
  };
}
#if defined(ASIO_HAS_IO_URING_AS_DEFAULT)
catch (const std::system_error& e) {
  throw std::system_error(
      e.code(), std::string("torsion was built with -Dio_uring=true and this kernel refuses "
                            "io_uring (") +
                    e.what() +
                    "); a build cannot fall back to epoll: allow io_uring "
                    "(kernel.io_uring_disabled=0, the container's seccomp profile) or "
                    "rebuild without -Dio_uring");
}
#endif

Reactor::~Reactor() {
  // Timer callbacks may own objects that refer back to the reactor: drop them first.
  for (auto& call : pending_calls()) call.cancel();
  timers_.on_earlier_deadline = nullptr;
  impl_->connections.release_all();
  impl_->work.reset();
  impl_->io.stop();
}

double Reactor::seconds() const {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

asio::io_context& Reactor::context() noexcept { return impl_->io; }
std::size_t Reactor::connection_count() const noexcept { return impl_->connections.size(); }
detail::TrackedList& Reactor::connections() noexcept { return impl_->connections; }
bool Reactor::running() const noexcept { return impl_->running_loop; }

void Reactor::check_thread(const char* what) const {
  const std::thread::id owner = impl_->loop_thread.load(std::memory_order_relaxed);
  if (owner != std::thread::id() && owner != std::this_thread::get_id())
    throw std::logic_error(std::string(what) +
                           ": called from another thread while the reactor runs; only "
                           "call_from_thread is safe from other threads");
}

void Reactor::call_soon(std::function<void()> fn, Priority priority) {
#ifndef NDEBUG
  check_thread("call_soon");
#endif
  if (!fn) throw std::invalid_argument("call_soon: empty callback");
  Impl& d = *impl_;
  if (priority == Priority::idle) {
    d.idle.push_back(std::move(fn));
    if (d.blocking && d.idle.size() == 1) d.io.stop();  // switch run() to polling
    return;
  }
  d.ready[priority == Priority::high ? 0 : 1].push_back(std::move(fn));
  d.post_drain();
}

void Reactor::call_from_thread(std::function<void()> fn) {
  if (!fn) throw std::invalid_argument("call_from_thread: empty callback");
  asio::post(impl_->io, [fn = std::move(fn)]() mutable {
    const detail::TurnScope turn;
    invoke_logged(fn, "call_from_thread");
  });
}

void Reactor::stop() {
  impl_->stop_requested = true;
  impl_->io.stop();
}

namespace {

// Runs the oldest idle callback.
void run_one_idle(std::deque<std::function<void()>>& idle) {
  auto fn = std::move(idle.front());
  idle.pop_front();
  const detail::TurnScope turn;
  invoke_logged(fn, "an idle callback");
}

}  // namespace

// Marks the loop running on this thread for its scope. On the way out, normal or by an
// exception, it ends a shutdown in progress, drops the work guard and marks the loop
// stopped, so that the reactor can run again.
struct Reactor::LoopScope {
  Reactor::Impl& d;
  bool from_run;
  LoopScope(Reactor::Impl& impl, bool run, const char* what) : d(impl), from_run(run) {
    if (d.running_loop)
      throw std::logic_error(std::string(what) + ": the reactor is already running");
    d.running_loop = true;
    d.stop_requested = false;
    d.loop_thread.store(std::this_thread::get_id(), std::memory_order_relaxed);
    d.work.emplace(d.io.get_executor());
  }
  LoopScope(const LoopScope&) = delete;
  LoopScope& operator=(const LoopScope&) = delete;
  ~LoopScope() {
    d.blocking = false;
    if (d.signals) {
      std::error_code ignored;
      d.signals->cancel(ignored);  // its handler sees operation_aborted on the next run
      d.signals.reset();           // and the signals' default disposition is back
    }
    try {
      d.end_shutdown(from_run);
    } catch (...) {  // a destructor must not throw; the loop is over either way
    }
    d.work.reset();
    d.loop_thread.store(std::thread::id(), std::memory_order_relaxed);
    d.running_loop = false;
  }
};

void Reactor::run() {
  Impl& d = *impl_;
  LoopScope scope(d, true, "Reactor::run");
  if (d.handle_signals) {
    d.signals.emplace(d.io, SIGINT, SIGTERM);
    wait_for_signal();
  }
  while (!d.stop_requested) {
    d.io.restart();
    try {
      if (d.idle.empty()) {
        d.blocking = true;
        d.io.run();  // returns on stop(), or when an idle callback arrives
        d.blocking = false;
      } else if (d.io.poll() == 0 && !d.stop_requested && !d.idle.empty()) {
        run_one_idle(d.idle);
      }
    } catch (const std::exception& e) {
      d.blocking = false;
      log(LogLevel::error, std::string("unhandled exception in an Asio handler: ") + e.what());
    }
  }
}

bool Reactor::run_until(const std::function<bool()>& done, double timeout) {
  Impl& d = *impl_;
  LoopScope scope(d, false, "Reactor::run_until");
  const double deadline = seconds() + timeout;
  bool result = false;
  for (;;) {
    if ((result = done())) break;
    const double left = deadline - seconds();
    if (d.stop_requested || left <= 0) break;
    d.io.restart();
    try {
      // One handler at a time, checking `done` and the deadline in between: a source that
      // is always ready (a descriptor nobody drains, a call_soon that queues itself again)
      // would keep a whole poll() from returning.
      std::size_t ran = 0;
      while (!d.stop_requested && d.io.poll_one() > 0) {
        ++ran;
        if (done() || seconds() >= deadline) break;
      }
      if (ran == 0 && !d.stop_requested) {
        if (!d.idle.empty())
          run_one_idle(d.idle);
        else
          d.io.run_one_for(std::chrono::duration_cast<std::chrono::nanoseconds>(
              std::chrono::duration<double>(left)));
      }
    } catch (const std::exception& e) {
      log(LogLevel::error, std::string("unhandled exception in an Asio handler: ") + e.what());
    }
  }
  return result;
}

// --- Shutdown and signals ------------------------------------------------------------

namespace {

const char* signal_name(int signo) {
  switch (signo) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    default: return "a signal";
  }
}

// Runs the triggers of one phase (a copy: triggers may add or remove triggers).
template <class Triggers>
std::vector<Deferred<void>> run_triggers(const Triggers& all, ShutdownPhase phase) {
  std::vector<std::function<Deferred<void>()>> chosen;
  for (const auto& t : all)
    if (t.phase == phase) chosen.push_back(t.fn);
  std::vector<Deferred<void>> results;
  for (auto& fn : chosen) {
    try {
      results.push_back(fn());
    } catch (const std::exception& e) {
      log(LogLevel::error, std::string("exception in a shutdown trigger: ") + e.what());
    } catch (...) {
      log(LogLevel::error, "non-standard exception in a shutdown trigger");
    }
  }
  return results;
}

void log_failures(const std::vector<Outcome<void>>& outcomes) {
  for (const auto& o : outcomes)
    if (!o.ok()) log(LogLevel::error, "a shutdown trigger failed: " + describe_error(o.error()));
}

}  // namespace

void Reactor::wait_for_signal() {
  impl_->signals->async_wait([this](const std::error_code& ec, int signo) {
    if (ec) return;  // cancelled when run() returned
    Impl& d = *impl_;
    d.last_signal = signo;
    if (d.shutdown != Impl::Shutdown::idle) {
      log(LogLevel::warning, std::string("received ") + signal_name(signo) +
                                 " again during shutdown: aborting connections and stopping");
      d.connections.for_each([](detail::Tracked& t) { t.abort_tracked(); });
      stop();
      return;
    }
    log(LogLevel::info, std::string("received ") + signal_name(signo) + ": shutting down");
    shutdown();
    if (d.signals) wait_for_signal();
  });
}

bool Reactor::shutting_down() const noexcept { return impl_->shutdown != Impl::Shutdown::idle; }

std::uint64_t Reactor::add_trigger(ShutdownPhase phase, std::function<void()> plain,
                                   std::function<Deferred<void>()> deferred) {
  if (!plain && !deferred) throw std::invalid_argument("add_shutdown_trigger: empty callback");
  if (plain)
    deferred = [plain = std::move(plain)] {
      plain();
      return succeed();
    };
  const auto id = impl_->next_trigger_id++;
  impl_->triggers.push_back({id, phase, std::move(deferred)});
  return id;
}

bool Reactor::remove_shutdown_trigger(std::uint64_t id) {
  auto& all = impl_->triggers;
  for (auto it = all.begin(); it != all.end(); ++it) {
    if (it->id == id) {
      all.erase(it);
      return true;
    }
  }
  return false;
}

void Reactor::set_shutdown_grace(double seconds) {
  if (std::isnan(seconds) || seconds < 0)
    throw std::invalid_argument("set_shutdown_grace: seconds must be >= 0, got " +
                                std::to_string(seconds));
  impl_->grace = seconds;
}
double Reactor::shutdown_grace() const noexcept { return impl_->grace; }
void Reactor::set_handle_signals(bool handle) noexcept { impl_->handle_signals = handle; }
bool Reactor::handle_signals() const noexcept { return impl_->handle_signals; }
int Reactor::last_signal() const noexcept { return impl_->last_signal; }

void Reactor::track_listening_port(const std::shared_ptr<ListeningPort>& port) {
  auto& ports = impl_->ports;
  std::erase_if(ports, [](const std::weak_ptr<ListeningPort>& w) { return w.expired(); });
  ports.push_back(port);
}

void Reactor::shutdown() {
  Impl& d = *impl_;
  if (d.shutdown != Impl::Shutdown::idle) return;
  d.shutdown = Impl::Shutdown::before;
  const auto generation = ++d.shutdown_generation;
  // From the loop: never inside the caller (which may be a transport callback).
  call_soon([this, generation] {
    if (generation != impl_->shutdown_generation) return;
    deferred_list(run_triggers(impl_->triggers, ShutdownPhase::before))
        .add_callback([this, generation](std::vector<Outcome<void>> outcomes) {
          log_failures(outcomes);
          if (generation == impl_->shutdown_generation) shutdown_during();
        });
  });
}

void Reactor::shutdown_during() {
  Impl& d = *impl_;
  d.shutdown = Impl::Shutdown::during;
  d.during_done = false;
  d.aborted = false;
  // Listening ports first, so that no new connection arrives while the others close.
  auto ports = std::move(d.ports);
  d.ports.clear();
  for (auto& w : ports)
    if (auto port = w.lock(); port && port->listening()) port->stop_listening();
  const auto generation = d.shutdown_generation;
  deferred_list(run_triggers(d.triggers, ShutdownPhase::during))
      .add_callback([this, generation](std::vector<Outcome<void>> outcomes) {
        log_failures(outcomes);
        if (generation == impl_->shutdown_generation) impl_->during_done = true;
      });
  d.connections.for_each([](detail::Tracked& t) { t.lose_tracked(); });
  shutdown_wait(seconds() + d.grace);
}

// Polls until every connection is gone (and the `during` Deferreds fired), aborting the
// connections left at the deadline. Polling keeps the transports free of shutdown hooks.
void Reactor::shutdown_wait(double deadline) {
  Impl& d = *impl_;
  if (d.connections.size() == 0 && (d.during_done || d.aborted)) {
    shutdown_after();
    return;
  }
  if (d.aborted && seconds() >= deadline + 1.0) {
    // Something tracked ignored the abort (a child process still running...): a shutdown
    // must end all the same.
    log(LogLevel::warning, std::to_string(d.connections.size()) +
                               " connection(s) still open 1 s after being aborted: stopping");
    shutdown_after();
    return;
  }
  if (!d.aborted && seconds() >= deadline) {
    d.aborted = true;
    if (d.connections.size() > 0) {
      log(LogLevel::warning, std::to_string(d.connections.size()) +
                                 " connection(s) still open after the shutdown grace period: "
                                 "aborting them");
      d.connections.for_each([](detail::Tracked& t) { t.abort_tracked(); });
    }
  }
  const auto generation = d.shutdown_generation;
  d.shutdown_poll = call_later(0.005, [this, deadline, generation] {
    if (generation == impl_->shutdown_generation) shutdown_wait(deadline);
  });
}

void Reactor::shutdown_after() {
  Impl& d = *impl_;
  d.shutdown = Impl::Shutdown::after;
  for (auto& ignored : run_triggers(d.triggers, ShutdownPhase::after))
    ignored.add_errback([](std::exception_ptr e) {
      log(LogLevel::error, "an after-shutdown trigger failed: " + describe_error(e));
    });
  d.shutdown = Impl::Shutdown::finished;
  stop();
}

}  // namespace torsion
