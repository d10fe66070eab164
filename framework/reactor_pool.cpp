#include "framework/reactor_pool.hpp"

#include <stdexcept>
#include <string>

namespace torsion {

ReactorPool::ReactorPool(std::size_t size) {
  if (size == 0) throw std::invalid_argument("ReactorPool: size must be at least 1, got 0");
  reactors_.reserve(size);
  for (std::size_t i = 0; i < size; ++i) reactors_.push_back(std::make_unique<Reactor>());
}

ReactorPool::~ReactorPool() {
  stop();
  join();
}

std::size_t ReactorPool::default_size() noexcept {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

Reactor& ReactorPool::reactor(std::size_t index) {
  if (index >= reactors_.size())
    throw std::out_of_range("ReactorPool::reactor: index " + std::to_string(index) +
                            " is out of range for a pool of " + std::to_string(reactors_.size()));
  return *reactors_[index];
}

void ReactorPool::start() {
  if (started()) throw std::logic_error("ReactorPool::start: the pool is already started");
  // Started before the threads run, so that a stop() from one of them is not lost.
  started_.store(true, std::memory_order_release);
  threads_.reserve(reactors_.size());
  try {
    for (auto& r : reactors_) threads_.emplace_back([reactor = r.get()] { reactor->run(); });
  } catch (...) {  // no thread for the rest: stop the ones that run
    stop();
    join();
    throw;
  }
}

void ReactorPool::stop() {
  // Reactor::stop must run on the reactor's thread; a stop queued before run() starts
  // still stops it, because run() executes the queued call first.
  if (!started()) return;
  for (auto& r : reactors_) r->call_from_thread([reactor = r.get()] { reactor->stop(); });
}

void ReactorPool::join() {
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
  started_.store(false, std::memory_order_release);
}

void ReactorPool::for_each(const std::function<void(Reactor&, std::size_t)>& fn) {
  for (std::size_t i = 0; i < reactors_.size(); ++i) {
    Reactor* r = reactors_[i].get();
    r->call_from_thread([fn, r, i] { fn(*r, i); });
  }
}

}  // namespace torsion
