#pragma once
/// \file
/// ReactorPool: one reactor per thread, so that a server uses every core.

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "framework/reactor.hpp"

namespace torsion {

/// N independent reactors, each run by its own thread. Nothing is shared between them:
/// every connection, timer and callback belongs to one reactor and runs on its thread.
/// To serve one port from every reactor, listen on each with SO_REUSEPORT
/// (listen_tcp_pool in transports/tcp_pool.hpp does that), and the kernel spreads the
/// incoming connections across them.
///
/// Typical use:
///
///     ReactorPool pool(ReactorPool::default_size());
///     auto ports = listen_tcp_pool(pool, 8000, factory);   // before start()
///     pool.start();
///     ...                                                  // later, from any thread:
///     pool.stop();
///     pool.join();
///
/// Set up each reactor (listen, connect, call_later) before start(), or from its own
/// thread with for_each / reactor(i).call_from_thread once it runs. start and join belong
/// to the thread that owns the pool; stop, for_each and size may be called from any
/// thread.
class ReactorPool {
 public:
  /// Makes `size` reactors, none running yet. Throws std::invalid_argument for 0.
  explicit ReactorPool(std::size_t size);
  /// Stops and joins the threads if they run, then destroys the reactors (which closes
  /// their connections without calling back, as ~Reactor does).
  ~ReactorPool();
  ReactorPool(const ReactorPool&) = delete;
  ReactorPool& operator=(const ReactorPool&) = delete;

  /// The number of cores std::thread::hardware_concurrency reports, at least 1.
  static std::size_t default_size() noexcept;

  /// How many reactors the pool has.
  std::size_t size() const noexcept { return reactors_.size(); }

  /// The reactor at `index` (0-based). Use it from its own thread once the pool runs.
  /// Throws std::out_of_range for an index >= size().
  Reactor& reactor(std::size_t index);

  /// Starts one thread per reactor, each in Reactor::run(). Throws std::logic_error if
  /// the threads are already started (join() first to start again).
  void start();

  /// True from start() until join() returns.
  bool started() const noexcept { return started_.load(std::memory_order_acquire); }

  /// Asks every reactor to stop after its current callback; returns at once. Thread-safe;
  /// does nothing if the pool is not started.
  void stop();

  /// Waits until every thread has returned from Reactor::run() (after stop()).
  void join();

  /// Runs `fn(reactor, index)` on each reactor's own thread, from its loop (queued with
  /// call_from_thread, so it runs once the pool starts if it has not yet). Thread-safe.
  /// `fn` is copied once per reactor.
  void for_each(const std::function<void(Reactor&, std::size_t)>& fn);

 private:
  std::vector<std::unique_ptr<Reactor>> reactors_;
  std::vector<std::thread> threads_;
  std::atomic<bool> started_{false};
};

}  // namespace torsion
