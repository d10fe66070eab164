#include "transports/process.hpp"

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>

#include <cerrno>
#include <deque>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>

#include "framework/protocol.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/settle.hpp"
#include "tests/support/wait.hpp"
#include "transports/tcp.hpp"

using namespace torsion;
using torsion::test::loopback;
using torsion::test::wait_for;

namespace {

// Records every event and checks their order.
struct Child : ProcessProtocol {
  int made = 0;
  int exited = 0;
  int ended = 0;
  int out_eof = 0;
  int err_eof = 0;
  std::string out;
  std::string err;
  std::optional<ExitStatus> status;
  std::function<void(Child&)> on_made;
  std::function<void(Child&)> on_out;

  void connection_made() override {
    CHECK(made == 0);
    ++made;
    if (on_made) on_made(*this);
  }
  void out_received(std::string_view data) override {
    CHECK(made == 1);
    CHECK(out_eof == 0);
    out.append(data);
    if (on_out) on_out(*this);
  }
  void err_received(std::string_view data) override {
    CHECK(err_eof == 0);
    err.append(data);
  }
  void out_closed() override { ++out_eof; }
  void err_closed() override { ++err_eof; }
  void process_exited(const ExitStatus& s) override {
    CHECK(exited == 0);
    ++exited;
    status = s;
  }
  void process_ended(const ExitStatus& s) override {
    CHECK(ended == 0);
    CHECK(exited == 1);
    CHECK(out_eof == 1);
    CHECK(err_eof == 1);
    CHECK(s == *status);
    CHECK(has_transport());
    ++ended;
  }
  bool done() const { return ended == 1; }
};

std::vector<std::string> sh(const std::string& script) { return {"/bin/sh", "-c", script}; }

// True when this process has no child left to reap (no zombie, nothing running).
bool no_children() {
  int raw = 0;
  return ::waitpid(-1, &raw, WNOHANG) == -1 && errno == ECHILD;
}

}  // namespace

TEST_CASE("process output, stderr and exit code") {
  Reactor reactor;
  Child child;
  auto p = spawn_process(reactor, child, sh("echo out; echo oops >&2; exit 3"));
  CHECK(p->pid() > 0);
  CHECK_FALSE(p->exit_status());
  wait_for(reactor, [&] { return child.done(); }, "process_ended");
  CHECK(child.out == "out\n");
  CHECK(child.err == "oops\n");
  CHECK(child.status->exit_code == 3);
  CHECK(child.status->exited());
  CHECK_FALSE(child.status->success());
  CHECK(child.status->to_string() == "exit code 3");
  CHECK(p->exit_status() == child.status);
  CHECK_FALSE(child.has_transport());
  CHECK_FALSE(p->signal_process(SIGTERM));  // already reaped
  CHECK(reactor.connection_count() == 0);
  CHECK(no_children());
}

TEST_CASE("process stdin writes and close_stdin") {
  Reactor reactor;
  Child child;
  const std::string big(512 * 1024, 'z');  // more than a pipe holds: exercises the queue
  child.on_made = [&](Child& c) {
    CHECK_THROWS_AS(c.transport().signal_process(9999), std::invalid_argument);
    c.transport().write("hello ");
    c.transport().write(big);
    c.transport().close_stdin();
    c.transport().write("dropped after close_stdin");
  };
  auto p = spawn_process(reactor, child, {"cat"});
  wait_for(reactor, [&] { return child.done(); }, "cat to end");
  CHECK(child.out.size() == 6 + big.size());
  CHECK(child.out.substr(0, 6) == "hello ");
  CHECK(child.status->success());
  CHECK(p->buffer_size() == 0);
}

TEST_CASE("process killed by a signal is reported exactly") {
  Reactor reactor;
  Child child;
  child.on_made = [](Child& c) { CHECK(c.transport().signal_process(SIGTERM)); };
  auto p = spawn_process(reactor, child, {"sleep", "30"});
  wait_for(reactor, [&] { return child.done(); }, "the killed process");
  CHECK(child.status->signal == SIGTERM);
  CHECK(child.status->exit_code == -1);
  CHECK_FALSE(child.status->exited());
  CHECK(child.status->to_string().find("killed by signal 15") == 0);
  CHECK_FALSE(p->signal_process(SIGTERM));  // reaped: nothing to signal
}

TEST_CASE("process environment and working directory") {
  Reactor reactor;
  Child child;
  ProcessOptions options;
  options.env = std::vector<std::string>{"TORSION_TEST=yes", "PATH=/usr/bin:/bin"};
  options.cwd = "/tmp";
  auto p = spawn_process(reactor, child, sh("echo $TORSION_TEST $HOME; pwd"), options);
  wait_for(reactor, [&] { return child.done(); }, "the process");
  CHECK(child.out == "yes\n/tmp\n");
}

TEST_CASE("process does not inherit this process's descriptors") {
  Reactor reactor;
  // Sockets Asio opened without O_CLOEXEC must not reach the child.
  auto factory = make_factory<Protocol>();
  auto port = listen_tcp(reactor, 0, factory, loopback());
  Child child;
  auto p = spawn_process(reactor, child, sh("ls /proc/$$/fd"));
  wait_for(reactor, [&] { return child.done(); }, "the listing");
  std::set<std::string> fds;
  std::istringstream lines(child.out);
  for (std::string line; std::getline(lines, line);) fds.insert(line);
  // 0-2 are the pipes; ls may show the descriptor it opened for the directory (3).
  fds.erase("3");
  CHECK(fds == std::set<std::string>{"0", "1", "2"});
  port->stop_listening();
}

TEST_CASE("many children at once are all reaped with their own status") {
  Reactor reactor;
  constexpr int kChildren = 40;
  std::deque<Child> children(kChildren);
  std::vector<std::shared_ptr<ProcessTransport>> processes;
  for (int i = 0; i < kChildren; ++i)
    processes.push_back(spawn_process(reactor, children[static_cast<std::size_t>(i)],
                                      sh("echo " + std::to_string(i) + "; exit " + std::to_string(i))));
  CHECK(reactor.connection_count() == kChildren);
  wait_for(reactor, [&] {
    for (auto& c : children) if (!c.done()) return false;
    return true;
  }, "every child to end");
  for (int i = 0; i < kChildren; ++i) {
    const auto& c = children[static_cast<std::size_t>(i)];
    CHECK(c.status->exit_code == i);
    CHECK(c.out == std::to_string(i) + "\n");
  }
  CHECK(reactor.connection_count() == 0);
  CHECK(no_children());
}

TEST_CASE("process that closes its stdin early: writes never raise SIGPIPE") {
  Reactor reactor;
  Child child;
  child.on_made = [](Child& c) { c.transport().write("first line\n"); };
  child.on_out = [](Child& c) {
    // The child is gone (or going): keep writing into the closed pipe.
    for (int i = 0; i < 100; ++i) c.transport().write(std::string(4096, 'p'));
  };
  auto p = spawn_process(reactor, child, sh("exec 0<&-; echo closed"));
  wait_for(reactor, [&] { return child.done(); }, "the process");
  CHECK(child.out == "closed\n");
  CHECK(child.status->success());
}

TEST_CASE("process lose_connection closes the pipes; the exit still arrives") {
  Reactor reactor;
  Child child;
  child.on_made = [](Child& c) { c.transport().lose_connection(); };
  auto p = spawn_process(reactor, child, {"cat"});
  wait_for(reactor, [&] { return child.done(); }, "cat sees EOF and ends");
  CHECK(child.status->success());
}

TEST_CASE("process start failures throw and fire nothing") {
  Reactor reactor;
  Child child;
  try {
    spawn_process(reactor, child, {"/nonexistent/program"});
    FAIL("no exception");
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::errc::no_such_file_or_directory);
    CHECK(std::string(e.what()).find("/nonexistent/program") != std::string::npos);
  }
  ProcessOptions bad_cwd;
  bad_cwd.cwd = "/nonexistent/dir";
  CHECK_THROWS_AS(spawn_process(reactor, child, {"true"}, bad_cwd), std::system_error);
  CHECK_THROWS_AS(spawn_process(reactor, child, {}), std::invalid_argument);
  CHECK_THROWS_AS(spawn_process(reactor, child, {std::string("a\0b", 3)}), std::invalid_argument);
  test::settle(reactor);  // anything the failed calls had queued would have run
  CHECK(child.made == 0);
  CHECK(reactor.connection_count() == 0);
  CHECK(no_children());
}

TEST_CASE("process_exited comes first when a grandchild still holds the output") {
  Reactor reactor;
  struct Late : Child {
    void process_exited(const ExitStatus& s) override {
      Child::process_exited(s);
      CHECK(out_eof == 0);  // the background cat still has stdout open
      transport().write("late\n");
      transport().close_stdin();
    }
  } child;
  // The shell exits at once; its background cat keeps stdin (through fd 3) and stdout.
  auto p = spawn_process(reactor, child, sh("exec 3<&0; cat <&3 & exit 7"));
  wait_for(reactor, [&] { return child.done(); }, "the grandchild to finish");
  CHECK(child.status->exit_code == 7);
  CHECK(child.out == "late\n");
}
