#include "transports/fd_watch.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <asio/execution_context.hpp>
#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <unordered_map>

#include "framework/log.hpp"
#include "transports/detail/io_close.hpp"

namespace torsion {
namespace {

enum Direction { reading = 0, writing = 1 };

// One watched descriptor: Asio owns a duplicate of the user's fd, so that releasing or
// destroying it never touches the user's descriptor.
struct Watch : std::enable_shared_from_this<Watch> {
  explicit Watch(asio::io_context& io) : descriptor(io) {}

  asio::posix::stream_descriptor descriptor;
  // Held through shared_ptr so that a callback removing itself is destroyed only after it
  // returns.
  std::shared_ptr<std::function<void()>> callbacks[2];
  bool waiting[2] = {false, false};

  void arm(Direction d) {
    if (waiting[d] || !callbacks[d] || !descriptor.is_open()) return;
    waiting[d] = true;
    // A wait started on a descriptor that is still ready completes at once (Asio re-arms
    // the epoll registration for each wait), which gives level-triggered callbacks.
    descriptor.async_wait(
        d == reading ? asio::posix::stream_descriptor::wait_read
                     : asio::posix::stream_descriptor::wait_write,
        [self = shared_from_this(), d](const std::error_code& ec) { self->ready(d, ec); });
  }

  void ready(Direction d, const std::error_code& ec) {
    waiting[d] = false;
    if (ec == asio::error::operation_aborted || !descriptor.is_open()) return;
    auto fn = callbacks[d];
    if (!fn) return;  // removed while the wait was pending
    if (ec) {
      log(LogLevel::warning, "watching descriptor " + std::to_string(descriptor.native_handle()) +
                                 " failed: " + ec.message());
    } else {
      try {
        (*fn)();
      } catch (const std::exception& e) {
        log(LogLevel::error, std::string("exception in a descriptor callback: ") + e.what());
      } catch (...) {
        log(LogLevel::error, "non-standard exception in a descriptor callback");
      }
    }
    arm(d);
  }
};

class WatchService final : public asio::execution_context::service {
 public:
  using key_type = WatchService;
  inline static asio::execution_context::id id;

  explicit WatchService(asio::execution_context& context) : service(context) {}

  void shutdown() override {
    for (auto& [fd, w] : watches_) {
      w->callbacks[0].reset();
      w->callbacks[1].reset();
    }
    watches_.clear();
  }

  void add(asio::io_context& io, int fd, Direction d, std::function<void()> fn, const char* what) {
    if (fd < 0)
      throw std::invalid_argument(std::string(what) + ": bad descriptor " + std::to_string(fd));
    if (!fn) throw std::invalid_argument(std::string(what) + ": empty callback");
    auto it = watches_.find(fd);
    if (it == watches_.end()) {
      struct stat st {};
      if (::fstat(fd, &st) != 0)
        throw std::system_error(errno, std::system_category(),
                                std::string(what) + " on descriptor " + std::to_string(fd));
      if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))  // epoll refuses them (EPERM)
        throw std::system_error(EPERM, std::system_category(),
                                std::string(what) + ": descriptor " + std::to_string(fd) +
                                    " is a regular file or directory, which cannot be watched");
      const int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
      if (dup < 0)
        throw std::system_error(errno, std::system_category(),
                                std::string(what) + " on descriptor " + std::to_string(fd));
      auto w = std::make_shared<Watch>(io);
      std::error_code ec;
      w->descriptor.assign(dup, ec);
      if (ec) {
        ::close(dup);
        throw std::system_error(normalize(ec), std::string(what) + " on descriptor " +
                                                   std::to_string(fd));
      }
      it = watches_.emplace(fd, std::move(w)).first;
    }
    Watch& w = *it->second;
    w.callbacks[d] = std::make_shared<std::function<void()>>(std::move(fn));
    w.arm(d);
  }

  bool remove(int fd, Direction d) {
    auto it = watches_.find(fd);
    if (it == watches_.end() || !it->second->callbacks[d]) return false;
    auto w = it->second;
    w->callbacks[d].reset();
    if (!w->callbacks[1 - d]) {
      watches_.erase(it);
      // The duplicate; pending waits complete as aborted (on io_uring they are cancelled
      // and the duplicate closes with the Watch, which their handlers hold: io_close.hpp).
      detail::close_or_cancel(w->descriptor, w->waiting[reading] || w->waiting[writing]);
    }
    return true;
  }

 private:
  static std::error_code normalize(std::error_code ec) {
    return {ec.value(), std::system_category()};
  }

  std::unordered_map<int, std::shared_ptr<Watch>> watches_;
};

WatchService& service(Reactor& reactor) {
  return asio::use_service<WatchService>(reactor.context());
}

}  // namespace

void add_reader(Reactor& reactor, int fd, std::function<void()> fn) {
  service(reactor).add(reactor.context(), fd, reading, std::move(fn), "add_reader");
}

void add_writer(Reactor& reactor, int fd, std::function<void()> fn) {
  service(reactor).add(reactor.context(), fd, writing, std::move(fn), "add_writer");
}

bool remove_reader(Reactor& reactor, int fd) { return service(reactor).remove(fd, reading); }

bool remove_writer(Reactor& reactor, int fd) { return service(reactor).remove(fd, writing); }

}  // namespace torsion
