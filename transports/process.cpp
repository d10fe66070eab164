#include "transports/process.hpp"

#include <fcntl.h>
#include <poll.h>
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
#include <cstdint>
#include <cstring>
#include <string>
#include <system_error>

#include "framework/detail/guard.hpp"
#include "framework/detail/tracked.hpp"
#include "framework/detail/turn.hpp"
#include "framework/log.hpp"
#include "framework/protocol.hpp"
#include "transports/detail/pipe_socket.hpp"
#include "transports/detail/stream_engine.hpp"

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

// The child's three pipes, each a transport on the one stream engine (stream_engine.hpp)
// over a PipeSocket: stdin write-only, stdout and stderr read-only.
using Pipe = detail::StreamEngine<detail::PipeSocket>;
enum class Stdio : std::uint8_t { in = 0, out = 1, err = 2 };

class ChildProcess;

// The engine's protocol for one pipe: forwards what it reads and its end to the child.
class PipeEnd final : public Protocol {
 public:
  PipeEnd(ChildProcess& child, Stdio which) : child_(child), which_(which) {}
  void data_received(std::string_view data) override;
  bool eof_received() override { return false; }  // a pipe has one direction: EOF ends it
  void connection_lost(const Reason& reason) override;

 private:
  ChildProcess& child_;
  Stdio which_;
};

class ChildProcess final : public ProcessTransport,
                           public detail::Tracked,
                           public std::enable_shared_from_this<ChildProcess> {
 public:
  ChildProcess(Reactor& reactor, ProcessProtocol& protocol,
               std::unique_ptr<ProcessProtocol> owned)
      : reactor_(reactor), connections_(reactor.connections()), protocol_(protocol),
        owned_(std::move(owned)), pidfd_(reactor.context()) {}

  ~ChildProcess() override { connections_.unlink(*this); }

  // Takes the parent's pipe ends and the pidfd. connection_made follows from the loop;
  // the pipes start now (so that writes made before it are queued, not lost), and their
  // first reads are posted behind connection_made.
  void start(int pid, Fd& in, Fd& out, Fd& err, Fd& pidfd) {
    pid_ = pid;
    auto& io = reactor_.context();
    pipes_[0] = std::make_shared<Pipe>(reactor_, detail::PipeSocket(io, -1, in.release(), false),
                                       Address(), Address());
    pipes_[1] = std::make_shared<Pipe>(reactor_, detail::PipeSocket(io, out.release(), -1, false),
                                       Address(), Address());
    pipes_[2] = std::make_shared<Pipe>(reactor_, detail::PipeSocket(io, err.release(), -1, false),
                                       Address(), Address());
    pidfd_.assign(pidfd.release());
    self_ = shared_from_this();
    connections_.link(*this);
    asio::post(reactor_.context(), [self = shared_from_this()] { self->begin(); });
    // The child counts as one connection of the reactor: the pipes leave the reactor's
    // list (their start() joined it) and are closed and released through this object.
    for (std::size_t i = 0; i < 3; ++i) {
      pipes_[i]->start(std::make_unique<PipeEnd>(*this, static_cast<Stdio>(i)));
      connections_.unlink(*pipes_[i]);
    }
  }

  int pid() const override { return pid_; }
  std::optional<ExitStatus> exit_status() const override { return status_; }

  void close_stdin() override { pipe(Stdio::in).lose_connection(); }

  void lose_connection() override {
    for (auto& p : pipes_) p->lose_connection();
  }

  void abort_connection() override {
    for (auto& p : pipes_) p->abort_connection();
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

  // Producer, for the child's output.
  void pause_producing() override {
    pipe(Stdio::out).pause_producing();
    pipe(Stdio::err).pause_producing();
  }
  void resume_producing() override {
    pipe(Stdio::out).resume_producing();
    pipe(Stdio::err).resume_producing();
  }
  void stop_producing() override { lose_connection(); }

  // Tracked (for the child and its pipes). The pipes close as any connection does; the
  // child is asked to end (SIGTERM) when the shutdown starts and made to (SIGKILL) when
  // its grace period ends, so that it is reaped, and process_ended delivered, inside the
  // shutdown.
  void lose_tracked() override {
    lose_connection();
    signal_process(SIGTERM);
  }
  void abort_tracked() override {
    abort_connection();
    signal_process(SIGKILL);
  }
  // The reactor is being destroyed with the child unreaped: kill and reap it here, with
  // no event, so that nothing is left running or as a zombie.
  void release_tracked() override {
    if (!status_ && pidfd_.is_open()) {
      signal_process(SIGKILL);
      reap_now();
    }
    released_ = true;
    for (auto& p : pipes_) p->release_tracked();
    // Until the exit is seen a wait is queued: on io_uring it is cancelled and the pidfd
    // closes with this object, which the wait's handler holds (io_close.hpp).
    detail::close_or_cancel(pidfd_, !status_);
    connections_.unlink(*this);
    auto keep = std::move(self_);
  }

  // From the pipes' protocols.
  void received(Stdio which, std::string_view data) {
    if (which == Stdio::out)
      guarded("out_received", [&] { protocol_.out_received(data); });
    else if (which == Stdio::err)
      guarded("err_received", [&] { protocol_.err_received(data); });
  }

  void pipe_closed(Stdio which, const Reason& reason) {
    const auto i = static_cast<std::size_t>(which);
    open_[i] = false;
    if (which != Stdio::in && !reason.clean() && !reason.is(error::connection_aborted))
      log(LogLevel::warning,
          "reading from process " + std::to_string(pid_) + ": " + reason.message());
    // Every pipe's end is posted behind connection_made (begin() was posted first).
    switch (which) {
      case Stdio::in: guarded("in_closed", [&] { protocol_.in_closed(); }); break;
      case Stdio::out: guarded("out_closed", [&] { protocol_.out_closed(); }); break;
      case Stdio::err: guarded("err_closed", [&] { protocol_.err_closed(); }); break;
    }
    maybe_end();
  }

 protected:
  Transport& stdin_pipe() const override { return *pipes_[0]; }

 private:
  Pipe& pipe(Stdio which) { return *pipes_[static_cast<std::size_t>(which)]; }

  // Runs a protocol callback; an exception is logged and aborts the transport (the child
  // itself is not touched: its exit still arrives).
  template <class F>
  void guarded(const char* what, F&& fn) {
    detail::run_guarded(fn, [&](const char* text, const std::exception_ptr&) {
      log(LogLevel::error, detail::exception_in(what, text) + " (process " +
                               std::to_string(pid_) + "); aborting its pipes");
      abort_connection();
    });
  }

  // Waits (at most 10 s: a process stuck in the kernel cannot be helped) for the killed
  // child and reaps it. The pidfd is non-blocking, so waitid is polled.
  void reap_now() {
    const int fd = pidfd_.native_handle();
    for (int waited_ms = 0; waited_ms < 10'000; waited_ms += 100) {
      siginfo_t info{};
      const int r = ::waitid(P_PIDFD, static_cast<id_t>(fd), &info, WEXITED | WNOHANG);
      if (r != 0 && errno != EINTR && errno != EAGAIN) return;  // ECHILD: reaped elsewhere
      if (r == 0 && info.si_pid != 0) return;
      ::pollfd p{fd, POLLIN, 0};
      ::poll(&p, 1, 100);
    }
    log(LogLevel::warning, "process " + std::to_string(pid_) +
                               " did not end after SIGKILL; it is left unreaped");
  }

  void begin() {
    if (released_) return;
    started_ = true;
    attach(protocol_);
    {
      const detail::TurnScope turn;  // writes made in connection_made leave in one batch
      guarded("connection_made", [&] { protocol_.connection_made(); });
    }
    wait_exit();
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

  // The end: reaped and both outputs closed. Stdin, if a grandchild still reads it, is
  // closed now (dropping what is queued), so that process_ended comes last.
  void maybe_end() {
    if (ended_ || !started_ || !status_ || open_[1] || open_[2]) return;
    if (open_[0]) {
      pipe(Stdio::in).abort_connection();  // its connection_lost calls here again
      return;
    }
    ended_ = true;
    guarded("process_ended", [&] { protocol_.process_ended(*status_); });
    detach(protocol_);
    connections_.unlink(*this);
    auto keep_protocol = std::move(owned_);
    auto keep = std::move(self_);
  }

  using Descriptor = asio::posix::stream_descriptor;

  Reactor& reactor_;
  detail::TrackedList& connections_;
  ProcessProtocol& protocol_;
  std::unique_ptr<ProcessProtocol> owned_;  // the protocol, when the transport owns it
  std::array<std::shared_ptr<Pipe>, 3> pipes_;
  Descriptor pidfd_;
  std::shared_ptr<ChildProcess> self_;  // from start() until process_ended or release
  std::optional<ExitStatus> status_;
  int pid_ = -1;
  std::array<bool, 3> open_{true, true, true};
  bool started_ = false;  // connection_made was called
  bool ended_ = false;
  bool released_ = false;
};

void PipeEnd::data_received(std::string_view data) { child_.received(which_, data); }
void PipeEnd::connection_lost(const Reason& reason) { child_.pipe_closed(which_, reason); }

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

std::shared_ptr<ProcessTransport> spawn(Reactor& reactor, ProcessProtocol& protocol,
                                        std::unique_ptr<ProcessProtocol> owned,
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
  auto child = std::make_shared<ChildProcess>(reactor, protocol, std::move(owned));
  child->start(pid, in_w, out_r, err_r, pidfd);
  return child;
}

}  // namespace

std::shared_ptr<ProcessTransport> spawn_process(Reactor& reactor, ProcessProtocol& protocol,
                                                const std::vector<std::string>& argv,
                                                const ProcessOptions& options) {
  return spawn(reactor, protocol, nullptr, argv, options);
}

std::shared_ptr<ProcessTransport> spawn_process(Reactor& reactor,
                                                std::unique_ptr<ProcessProtocol> protocol,
                                                const std::vector<std::string>& argv,
                                                const ProcessOptions& options) {
  if (!protocol) throw std::invalid_argument("spawn_process: null protocol");
  ProcessProtocol& p = *protocol;
  return spawn(reactor, p, std::move(protocol), argv, options);
}

}  // namespace torsion
