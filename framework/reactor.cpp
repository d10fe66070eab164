#include "framework/reactor.hpp"

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <exception>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "framework/detail/tracked.hpp"
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

std::chrono::steady_clock::time_point to_time_point(double seconds) {
  using namespace std::chrono;
  return steady_clock::time_point(ceil<steady_clock::duration>(duration<double>(seconds)));
}

}  // namespace

struct Reactor::Impl {
  // Declared first so that it outlives the io_context, whose destruction may destroy
  // handlers that own connections.
  detail::TrackedList connections;
  asio::io_context io{1};
  asio::steady_timer timer{io};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;

  std::vector<std::function<void()>> ready[2];    // high, normal: filled by call_soon
  std::vector<std::function<void()>> running[2];  // the snapshot being run
  std::deque<std::function<void()>> idle;
  bool drain_posted = false;
  bool stop_requested = false;
  bool running_loop = false;
  bool blocking = false;  // inside io.run(): an idle callback must interrupt it
  double armed = kNever;

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
    for (auto& batch : running) {
      for (auto& cb : batch) invoke_logged(cb, "a call_soon callback");
      batch.clear();
    }
    drain_posted = false;
    if (!ready[0].empty() || !ready[1].empty()) post_drain();
  }
};

Reactor::Reactor() : impl_(std::make_unique<Impl>()) {
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
      timers_.run_due(seconds());
      if (!timers_.empty()) timers_.on_earlier_deadline(timers_.next_deadline());
    });
  };
}

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

void Reactor::call_soon(std::function<void()> fn, Priority priority) {
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
  asio::post(impl_->io, [fn = std::move(fn)]() mutable { invoke_logged(fn, "call_from_thread"); });
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
  invoke_logged(fn, "an idle callback");
}

}  // namespace

void Reactor::run() {
  Impl& d = *impl_;
  if (d.running_loop) throw std::logic_error("Reactor::run: the reactor is already running");
  d.running_loop = true;
  d.stop_requested = false;
  d.work.emplace(d.io.get_executor());
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
  d.work.reset();
  d.running_loop = false;
}

bool Reactor::run_until(const std::function<bool()>& done, double timeout) {
  Impl& d = *impl_;
  if (d.running_loop)
    throw std::logic_error("Reactor::run_until: the reactor is already running");
  d.running_loop = true;
  d.stop_requested = false;
  d.work.emplace(d.io.get_executor());
  const double deadline = seconds() + timeout;
  bool result = false;
  for (;;) {
    if ((result = done())) break;
    const double left = deadline - seconds();
    if (d.stop_requested || left <= 0) break;
    d.io.restart();
    try {
      // One handler at a time, checking `done` in between: a source that is always
      // ready (a descriptor nobody drains) would keep a whole poll() from returning.
      std::size_t ran = 0;
      while (!d.stop_requested && d.io.poll_one() > 0) {
        ++ran;
        if (done()) break;
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
  d.work.reset();
  d.running_loop = false;
  return result;
}

}  // namespace torsion
