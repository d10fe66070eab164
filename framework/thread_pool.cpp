#include "framework/thread_pool.hpp"

#include <stdexcept>
#include <string>

namespace torsion {

std::size_t ThreadPool::default_size() noexcept {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

ThreadPool::ThreadPool(Reactor& reactor, std::size_t threads) : reactor_(reactor), size_(threads) {
  if (threads == 0) throw std::invalid_argument("ThreadPool: size must be >= 1, got 0");
  threads_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
}

ThreadPool::~ThreadPool() { stop(ShutdownMode::cancel); }

std::size_t ThreadPool::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void ThreadPool::enqueue(Job job) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void ThreadPool::work() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return !queue_.empty() || stopping_; });
      if (queue_.empty() || (stopping_ && !drain_)) return;
      job = std::move(queue_.front());
      queue_.pop_front();
      ++busy_;
    }
    job.run();
    --busy_;
  }
}

void ThreadPool::stop(ShutdownMode mode) {
  std::deque<Job> dropped;
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    drain_ = mode == ShutdownMode::wait;
    if (!drain_) dropped.swap(queue_);
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
  for (auto& job : dropped)
    if (!job.cancelled->load()) job.cancel();
}

}  // namespace torsion
