#include "transports/process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/post.hpp>
#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

#include "framework/detail/tracked.hpp"
#include "framework/log.hpp"

extern char** environ;

namespace torsion {

std::string ExitStatus::to_string() const {
  if (signal == 0) return "exit code " + std::to_string(exit_code);
  std::string s = "killed by signal " + std::to_string(signal);
  if (const char* name = ::strsignal(signal)) s += std::string(" (") + name + ")";
  if (core_dumped) s += ", core dumped";
  return s;
}

namespace {

using Descriptor = asio::posix::stream_descriptor;
constexpr std::size_t kReadSize = 64 * 1024;

[[noreturn]] void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::system_category(), what);
}

// Owns a raw descriptor until it is handed to Asio.
struct Fd {
  int fd = -1;
  Fd() = default;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  int release() { return std::exchange(fd, -1); }
};

void make_pipe(Fd& read_end, Fd& write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno(errno, "spawn_process: pipe2");
  read_end.fd = fds[0];
  write_end.fd = fds[1];
}

// Writes to a pipe without letting a closed read end raise SIGPIPE in this process: the
// signal is blocked for this thread around the write and a SIGPIPE the write caused is
// consumed before unblocking.
ssize_t write_no_sigpipe(int fd, const char* data, std::size_t size) {
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigset_t pending;
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  const ssize_t n = ::write(fd, data, size);
  const int err = errno;
  if (n < 0 && err == EPIPE && !was_pending) {
    const timespec zero{};
    while (sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = err;
  return n;
}

class ChildProcess final : public ProcessTransport,
                           public detail::Tracked,
                           public std::enable_shared_from_this<ChildProcess> {
 public:
  ChildProcess(Reactor& reactor, ProcessProtocol& protocol)
      : connections_(reactor.connections()), protocol_(protocol), stdin_(reactor.context()),
        stdout_(reactor.context()), stderr_(reactor.context()), pidfd_(reactor.context()) {}

  ~ChildProcess() override { connections_.unlink(*this); }

  // Takes the parent's pipe ends and the pidfd; starts from the loop.
  void start(int pid, Fd& in, Fd& out, Fd& err, Fd& pidfd) {
    pid_ = pid;
    stdin_.assign(in.release());
    stdout_.assign(out.release());
    stderr_.assign(err.release());
    pidfd_.assign(pidfd.release());
    std::error_code ec;
    stdin_.non_blocking(true, ec);
    stdout_.non_blocking(true, ec);
    stderr_.non_blocking(true, ec);
    self_ = shared_from_this();
    connections_.link(*this);
    asio::post(pidfd_.get_executor(), [self = shared_from_this()] { self->begin(); });
  }

  int pid() const override { return pid_; }
  std::size_t buffer_size() const override { return queue_.size() - sent_; }
  std::optional<ExitStatus> exit_status() const override { return status_; }

  void write(std::string_view data) override {
    if (stdin_closing_ || !stdin_.is_open() || data.empty()) return;
    if (queue_.empty()) {
      const std::size_t n = write_now(data);
      if (n == data.size() || !stdin_.is_open()) return;
      data.remove_prefix(n);
    }
    queue_.append(data);
    wait_writable();
  }

  void close_stdin() override {
    if (stdin_closing_) return;
    stdin_closing_ = true;
    if (buffer_size() == 0) close_stdin_now();
  }

  void lose_connection() override {
    stdin_closing_ = true;
    close_stdin_now();
    std::error_code ec;
    stdout_.cancel(ec);
    stderr_.cancel(ec);
    // The cancelled reads complete as aborted, which ends each stream.
  }

  bool signal_process(int sig) override {
    if (status_ || released_) return false;
    if (::syscall(SYS_pidfd_send_signal, pidfd_.native_handle(), sig, nullptr, 0) != 0) {
      if (errno == EINVAL)
        throw std::invalid_argument("signal_process: invalid signal " + std::to_string(sig));
      return false;  // ESRCH: exited, not reaped yet
    }
    return true;
  }

  // Tracked: a reactor shutdown closes the pipes; the child runs on (it is not ours to
  // kill), and the reactor stops after its grace period even if the child has not exited.
  void lose_tracked() override { lose_connection(); }
  void abort_tracked() override { lose_connection(); }
  void release_tracked() override {
    released_ = true;
    std::error_code ec;
    for (Descriptor* d : {&stdin_, &stdout_, &stderr_, &pidfd_}) d->close(ec);
    if (!status_) {
      int raw = 0;
      ::waitpid(pid_, &raw, WNOHANG);  // reap it if it is already done
    }
    connections_.unlink(*this);
    auto keep = std::move(self_);
  }

 private:
  template <class F>
  void guarded(const char* what, F&& fn) {
    try {
      fn();
    } catch (const std::exception& e) {
      log(LogLevel::error, std::string("exception in ") + what + " (process " +
                               std::to_string(pid_) + "): " + e.what());
    } catch (...) {
      log(LogLevel::error, std::string("non-standard exception in ") + what + " (process " +
                               std::to_string(pid_) + ")");
    }
  }

  void begin() {
    if (released_) return;
    attach(protocol_);
    guarded("connection_made", [&] { protocol_.connection_made(); });
    read(stdout_, out_buf_, true);
    read(stderr_, err_buf_, false);
    wait_exit();
  }

  // --- output ----------------------------------------------------------------------

  void read(Descriptor& d, std::unique_ptr<char[]>& buf, bool out) {
    if (!buf) buf = std::make_unique<char[]>(kReadSize);
    d.async_read_some(asio::buffer(buf.get(), kReadSize),
                      [self = shared_from_this(), &d, &buf, out](const std::error_code& ec,
                                                                 std::size_t n) {
                        if (self->released_) return;
                        if (ec) {
                          if (ec != asio::error::eof && ec != asio::error::operation_aborted)
                            log(LogLevel::warning, "reading from process " +
                                                       std::to_string(self->pid_) + ": " +
                                                       ec.message());
                          self->stream_closed(d, out);
                          return;
                        }
                        const std::string_view data(buf.get(), n);
                        if (out)
                          self->guarded("out_received", [&] { self->protocol_.out_received(data); });
                        else
                          self->guarded("err_received", [&] { self->protocol_.err_received(data); });
                        if (!self->released_) self->read(d, buf, out);
                      });
  }

  void stream_closed(Descriptor& d, bool out) {
    std::error_code ec;
    d.close(ec);
    if (out) {
      out_open_ = false;
      guarded("out_closed", [&] { protocol_.out_closed(); });
    } else {
      err_open_ = false;
      guarded("err_closed", [&] { protocol_.err_closed(); });
    }
    maybe_end();
  }

  // --- exit ------------------------------------------------------------------------

  void wait_exit() {
    pidfd_.async_wait(Descriptor::wait_read, [self = shared_from_this()](const std::error_code& ec) {
      if (self->released_ || ec == asio::error::operation_aborted) return;
      self->reap();
    });
  }

  void reap() {
    siginfo_t info{};
    // WNOWAIT is not used: the child is reaped here and only here, so no zombie remains.
    const int r = ::waitid(P_PIDFD, static_cast<id_t>(pidfd_.native_handle()), &info,
                           WEXITED | WNOHANG);
    if (r != 0) {
      if (errno == EINTR) {
        wait_exit();
        return;
      }
      // ECHILD: somebody else (a waitpid(-1) elsewhere) reaped it; the status is lost.
      log(LogLevel::warning, "process " + std::to_string(pid_) +
                                 " was reaped by other code; its exit status is unknown");
      finish_exit(ExitStatus{});
      return;
    }
    if (info.si_pid == 0) {  // not exited yet (spurious wake-up)
      wait_exit();
      return;
    }
    ExitStatus status;
    if (info.si_code == CLD_EXITED) {
      status.exit_code = info.si_status;
    } else {
      status.signal = info.si_status;
      status.core_dumped = info.si_code == CLD_DUMPED;
    }
    finish_exit(status);
  }

  void finish_exit(const ExitStatus& status) {
    status_ = status;
    std::error_code ec;
    pidfd_.close(ec);
    guarded("process_exited", [&] { protocol_.process_exited(status); });
    maybe_end();
  }

  void maybe_end() {
    if (ended_ || out_open_ || err_open_ || !status_) return;
    ended_ = true;
    stdin_closing_ = true;
    close_stdin_now();
    guarded("process_ended", [&] { protocol_.process_ended(*status_); });
    detach(protocol_);
    connections_.unlink(*this);
    auto keep = std::move(self_);
  }

  // --- stdin -----------------------------------------------------------------------

  std::size_t write_now(std::string_view data) {
    const ssize_t n = write_no_sigpipe(stdin_.native_handle(), data.data(), data.size());
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EAGAIN || errno == EINTR) return 0;
    // EPIPE: the child closed its stdin (or exited); what it did not read is dropped.
    stdin_closing_ = true;
    close_stdin_now();
    return 0;
  }

  void wait_writable() {
    if (write_waiting_ || !stdin_.is_open()) return;
    write_waiting_ = true;
    stdin_.async_wait(Descriptor::wait_write, [self = shared_from_this()](const std::error_code& ec) {
      self->write_waiting_ = false;
      if (ec || self->released_ || !self->stdin_.is_open()) return;
      self->drain();
    });
  }

  void drain() {
    while (sent_ < queue_.size()) {
      const std::size_t n = write_now(std::string_view(queue_).substr(sent_));
      if (!stdin_.is_open()) return;
      if (n == 0) {
        wait_writable();
        return;
      }
      sent_ += n;
    }
    queue_.clear();
    sent_ = 0;
    if (stdin_closing_) close_stdin_now();
  }

  void close_stdin_now() {
    queue_.clear();
    sent_ = 0;
    std::error_code ec;
    stdin_.close(ec);
  }

  detail::TrackedList& connections_;
  ProcessProtocol& protocol_;
  Descriptor stdin_;
  Descriptor stdout_;
  Descriptor stderr_;
  Descriptor pidfd_;
  std::shared_ptr<ChildProcess> self_;
  std::unique_ptr<char[]> out_buf_;
  std::unique_ptr<char[]> err_buf_;
  std::string queue_;  // bytes for stdin; sent_ of them already written
  std::size_t sent_ = 0;
  std::optional<ExitStatus> status_;
  int pid_ = -1;
  bool out_open_ = true;
  bool err_open_ = true;
  bool stdin_closing_ = false;
  bool write_waiting_ = false;
  bool ended_ = false;
  bool released_ = false;
};

// posix_spawn's attributes and file actions, destroyed on every path.
struct SpawnSetup {
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
  SpawnSetup() {
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_init(&actions);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
};

std::vector<char*> c_strings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const auto& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

void check_no_nul(const std::vector<std::string>& strings, const char* what) {
  for (const auto& s : strings)
    if (s.find('\0') != std::string::npos)
      throw std::invalid_argument(std::string("spawn_process: ") + what +
                                  " contains a NUL byte");
}

}  // namespace

std::shared_ptr<ProcessTransport> spawn_process(Reactor& reactor, ProcessProtocol& protocol,
                                                const std::vector<std::string>& argv,
                                                const ProcessOptions& options) {
  if (argv.empty() || argv[0].empty())
    throw std::invalid_argument("spawn_process: argv must name a program");
  check_no_nul(argv, "an argument");
  if (options.env) check_no_nul(*options.env, "an environment entry");
  if (protocol.has_transport())
    throw std::logic_error("spawn_process: the protocol is already attached to a process");

  Fd in_r, in_w, out_r, out_w, err_r, err_w;
  make_pipe(in_r, in_w);
  make_pipe(out_r, out_w);
  make_pipe(err_r, err_w);

  SpawnSetup setup;
  // The child's descriptors: the three pipe ends, nothing else (closefrom covers any
  // descriptor other code opened without O_CLOEXEC, such as Asio's sockets).
  posix_spawn_file_actions_adddup2(&setup.actions, in_r.fd, 0);
  posix_spawn_file_actions_adddup2(&setup.actions, out_w.fd, 1);
  posix_spawn_file_actions_adddup2(&setup.actions, err_w.fd, 2);
  if (!options.cwd.empty())
    posix_spawn_file_actions_addchdir_np(&setup.actions, options.cwd.c_str());
  posix_spawn_file_actions_addclosefrom_np(&setup.actions, 3);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&setup.attr, &none);
  posix_spawnattr_setsigdefault(&setup.attr, &all);
  posix_spawnattr_setflags(&setup.attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  auto args = c_strings(argv);
  std::vector<char*> envp;
  if (options.env) envp = c_strings(*options.env);
  char* const* env = options.env ? envp.data() : environ;
  pid_t pid = -1;
  const int rc = options.search_path
                     ? ::posix_spawnp(&pid, args[0], &setup.actions, &setup.attr, args.data(), env)
                     : ::posix_spawn(&pid, args[0], &setup.actions, &setup.attr, args.data(), env);
  if (rc != 0) throw_errno(rc, "spawn_process: cannot start '" + argv[0] + "'");

  Fd pidfd;
  pidfd.fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd.fd < 0) {
    const int err = errno;
    ::kill(pid, SIGKILL);
    int raw = 0;
    ::waitpid(pid, &raw, 0);
    throw_errno(err, "spawn_process: pidfd_open");
  }
  ::fcntl(pidfd.fd, F_SETFD, FD_CLOEXEC);
  auto child = std::make_shared<ChildProcess>(reactor, protocol);
  child->start(pid, in_w, out_r, err_r, pidfd);
  return child;
}

}  // namespace torsion
