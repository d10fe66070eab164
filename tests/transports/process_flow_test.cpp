// A child's pipes on the stream engine: stdin back-pressure with the water marks, a
// registered producer paused and resumed, half-close of stdin, abort, the child's output
// paused, the reader of stdin going away, and what a reactor shutdown does to a child
// still running. Children are real processes (cat, sh, sleep), stopped and continued by
// signal so that "the child does not read" is a fact, not a race.

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "framework/protocol.hpp"
#include "tests/support/pattern.hpp"
#include "tests/support/settle.hpp"
#include "tests/support/wait.hpp"
#include "transports/process.hpp"
#include "transports/stdio.hpp"

using namespace torsion;
using torsion::test::wait_for;

namespace {

// Records events in order, as letters: m(ade) i(n closed) o(ut closed) e(rr closed)
// x (exited) E(nded).
struct Child : ProcessProtocol {
  std::string events;
  std::string out;
  std::optional<ExitStatus> status;
  std::optional<ExitStatus> status_at_in_closed;
  bool alive_at_in_closed = false;

  void connection_made() override { events += 'm'; }
  void out_received(std::string_view data) override { out.append(data); }
  void in_closed() override {
    events += 'i';
    status_at_in_closed = transport().exit_status();
    alive_at_in_closed = ::kill(transport().pid(), 0) == 0;
  }
  void out_closed() override { events += 'o'; }
  void err_closed() override { events += 'e'; }
  void process_exited(const ExitStatus& s) override {
    events += 'x';
    status = s;
  }
  void process_ended(const ExitStatus&) override { events += 'E'; }
  bool done() const { return events.find('E') != std::string::npos; }
};

// A streaming producer that writes `total` bytes of a pattern in 16 KiB chunks while it is
// not paused.
struct Feeder : Producer {
  ProcessTransport* to = nullptr;
  std::size_t total = 0;
  std::size_t sent = 0;
  bool paused = false;
  int pauses = 0;
  int resumes = 0;
  int stops = 0;
  std::size_t max_buffered = 0;

  void run() {
    while (!paused && sent < total && to != nullptr) {
      const std::size_t n = std::min<std::size_t>(16 * 1024, total - sent);
      to->write(test::pattern_stream().slice(sent, n));
      sent += n;
      max_buffered = std::max(max_buffered, to->buffer_size());
    }
  }
  void pause_producing() override {
    CHECK_FALSE(paused);
    paused = true;
    ++pauses;
  }
  void resume_producing() override {
    CHECK(paused);
    paused = false;
    ++resumes;
    run();
  }
  void stop_producing() override {
    ++stops;
    to = nullptr;
  }
};

std::vector<std::string> sh(const std::string& script) { return {"/bin/sh", "-c", script}; }

bool no_children() {
  int raw = 0;
  return ::waitpid(-1, &raw, WNOHANG) == -1 && errno == ECHILD;
}

}  // namespace

TEST_CASE("process stdin: a child that stops reading pauses the producer; it resumes as the child drains") {
  Reactor reactor;
  Child child;
  Feeder feeder;
  feeder.total = 1024 * 1024;
  auto p = spawn_process(reactor, child, {"cat"});
  REQUIRE(p->signal_process(SIGSTOP));  // cat reads nothing until SIGCONT
  p->set_write_buffer_limits(32 * 1024, 8 * 1024);
  feeder.to = p.get();
  p->register_producer(feeder, true);
  wait_for(reactor, [&] { return child.events == "m"; }, "connection_made");
  feeder.run();
  wait_for(reactor, [&] { return feeder.paused; }, "the producer to be paused");
  CHECK(feeder.pauses == 1);
  CHECK(feeder.sent < feeder.total);
  CHECK(p->buffer_size() > 32 * 1024);
  // Paused means nothing more is asked of it while the child stays stopped.
  test::settle(reactor);
  CHECK(feeder.resumes == 0);
  const std::size_t sent_while_stopped = feeder.sent;

  REQUIRE(p->signal_process(SIGCONT));
  wait_for(reactor, [&] { return feeder.sent == feeder.total && p->buffer_size() == 0; },
           "the whole megabyte to reach cat");
  CHECK(feeder.resumes >= 1);
  CHECK(feeder.sent > sent_while_stopped);
  // A producer's writes overshoot the high mark by at most one chunk.
  CHECK(feeder.max_buffered <= 32 * 1024 + 16 * 1024);
  p->unregister_producer();
  p->close_stdin();
  wait_for(reactor, [&] { return child.done(); }, "cat to end");
  CHECK(child.out.size() == feeder.total);
  CHECK(test::pattern_stream().matches(0, child.out));
  CHECK(child.status->success());
  CHECK(child.events.find('i') < child.events.find('E'));
}

TEST_CASE("process close_stdin is a half-close: queued bytes are written first, output still read") {
  Reactor reactor;
  Child child;
  auto p = spawn_process(reactor, child, {"cat"});
  REQUIRE(p->signal_process(SIGSTOP));
  const std::string big = test::pattern_stream().bytes(300 * 1024);  // more than the pipe holds
  p->write(big);
  p->close_stdin();
  p->write("dropped after close_stdin");
  wait_for(reactor, [&] { return child.events == "m"; }, "connection_made");
  test::settle(reactor);
  CHECK(p->buffer_size() > 0);  // waits for cat to read
  CHECK(child.events == "m");   // stdin not closed yet: bytes still queued
  REQUIRE(p->signal_process(SIGCONT));
  wait_for(reactor, [&] { return child.done(); }, "cat to see EOF and end");
  CHECK(child.out == big);
  CHECK(child.status->success());
  CHECK(child.events.front() == 'm');
  CHECK(child.events.find('i') < child.events.find('o'));  // stdin closed before cat's EOF
  CHECK(child.events.back() == 'E');
}

TEST_CASE("process abort_connection drops what is queued for stdin and closes every pipe") {
  Reactor reactor;
  Child child;
  auto p = spawn_process(reactor, child, {"cat"});
  REQUIRE(p->signal_process(SIGSTOP));
  p->write(test::pattern_stream().bytes(300 * 1024));
  wait_for(reactor, [&] { return child.events == "m"; }, "connection_made");
  REQUIRE(p->buffer_size() > 0);
  p->abort_connection();
  CHECK(p->buffer_size() == 0);
  p->write("dropped after abort");
  CHECK(p->buffer_size() == 0);
  wait_for(reactor, [&] { return child.events.size() == 4; }, "the three pipes to close");
  CHECK(child.events.find('i') != std::string::npos);
  CHECK(child.events.find('o') != std::string::npos);
  CHECK(child.events.find('e') != std::string::npos);
  CHECK_FALSE(child.status);  // cat is still there, stopped
  REQUIRE(p->signal_process(SIGCONT));
  wait_for(reactor, [&] { return child.done(); }, "cat to end");
  CHECK(child.events.back() == 'E');
  CHECK(child.out.empty());  // its output was no longer read
}

TEST_CASE("process: the child closing its stdin stops the producer; the child lives on") {
  Reactor reactor;
  Child child;
  Feeder feeder;
  feeder.total = 64;
  // Closes its stdin, then stops itself: in_closed must come from the pipe, not the exit.
  auto p = spawn_process(reactor, child, sh("exec 0<&-; kill -STOP $$"));
  feeder.to = p.get();
  p->register_producer(feeder, true);
  wait_for(reactor, [&] { return child.events.find('i') != std::string::npos; },
           "the closed stdin to be noticed");
  CHECK(feeder.stops == 1);
  CHECK_FALSE(child.status_at_in_closed);
  CHECK(child.alive_at_in_closed);
  p->write("dropped: nobody reads");
  CHECK(p->buffer_size() == 0);
  REQUIRE(p->signal_process(SIGKILL));
  wait_for(reactor, [&] { return child.done(); }, "the child to end");
  CHECK(child.status->signal == SIGKILL);
}

TEST_CASE("process pause_producing stops reading the child's output; resume reads it all") {
  Reactor reactor;
  struct Paused : Child {
    void connection_made() override {
      Child::connection_made();
      transport().pause_producing();
      transport().close_stdin();
    }
  } child;
  auto p = spawn_process(reactor, child, {"head", "-c", "300000", "/dev/zero"});
  wait_for(reactor, [&] { return child.events == "mi"; }, "connection_made and in_closed");
  test::settle(reactor);
  CHECK(child.out.empty());
  CHECK_FALSE(child.status);  // head is blocked on its full pipe
  p->resume_producing();
  wait_for(reactor, [&] { return child.done(); }, "head to finish");
  CHECK(child.out == std::string(300000, '\0'));
  CHECK(child.status->success());
}

TEST_CASE("process on reactor shutdown: stdin closed and SIGTERM; process_ended before run() returns") {
  Reactor reactor;
  Child child;
  auto p = spawn_process(reactor, child, {"sleep", "1000"});
  reactor.call_soon([&] { reactor.shutdown(); });
  reactor.run();
  CHECK(child.done());
  REQUIRE(child.status);
  CHECK(child.status->signal == SIGTERM);
  CHECK(child.events.back() == 'E');
  CHECK(reactor.connection_count() == 0);
  CHECK(no_children());
}

TEST_CASE("process on reactor shutdown: a child that ignores SIGTERM gets SIGKILL at the grace period") {
  Reactor reactor;
  reactor.set_shutdown_grace(0.2);
  Child child;
  // Ignores SIGTERM, says so, and stops itself: only SIGKILL can end it.
  auto p = spawn_process(reactor, child, sh("trap '' TERM; echo ready; kill -STOP $$"));
  wait_for(reactor, [&] { return child.out == "ready\n"; }, "the child to ignore SIGTERM");
  reactor.call_soon([&] { reactor.shutdown(); });
  reactor.run();
  CHECK(child.done());
  REQUIRE(child.status);
  CHECK(child.status->signal == SIGKILL);
  CHECK(no_children());
}

TEST_CASE("process still running when the reactor is destroyed is killed and reaped") {
  int pid = -1;
  {
    Reactor reactor;
    auto child = std::make_unique<Child>();
    Child* seen = child.get();
    auto p = spawn_process(reactor, std::move(child), {"sleep", "1000"});
    pid = p->pid();
    wait_for(reactor, [&] { return seen->events == "m"; }, "connection_made");
  }
  CHECK(::kill(pid, 0) == -1);
  CHECK(errno == ESRCH);  // killed and reaped: no zombie
  CHECK(no_children());
}

TEST_CASE("stdio output: a reader that stops pauses the producer; a closed reader is connection_lost, not SIGPIPE") {
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  int in[2];
  REQUIRE(::pipe2(in, O_CLOEXEC) == 0);
  Reactor reactor;
  struct Filter : Protocol {
    std::optional<Reason>& lost;
    explicit Filter(std::optional<Reason>& l) : lost(l) {}
    void connection_lost(const Reason& r) override { lost = r; }
  };
  struct Pusher : Producer {
    Transport* t = nullptr;
    bool paused = false;
    int resumes = 0;
    void pause_producing() override { paused = true; }
    void resume_producing() override {
      paused = false;
      ++resumes;
    }
    void stop_producing() override { t = nullptr; }
  } pusher;
  std::optional<Reason> lost;  // the transport owns the protocol: the record lives here
  auto filter = std::make_unique<Filter>(lost);
  Filter* f = filter.get();
  auto t = connect_stdio(reactor, std::move(filter), StdioOptions{in[0], fds[1]});
  ::close(fds[1]);
  ::close(in[0]);
  wait_for(reactor, [&] { return f->has_transport(); }, "connection_made");
  pusher.t = t.get();
  t->register_producer(pusher, true);
  while (!pusher.paused) t->write(std::string(16 * 1024, 'x'));  // nobody reads fds[0]
  CHECK(t->buffer_size() > t->write_buffer_limits().high);
  // Reading the pipe drains the queue to the low mark: the producer is resumed.
  std::string got;
  wait_for(
      reactor,
      [&] {
        char buf[65536];
        ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
        const auto n = ::read(fds[0], buf, sizeof buf);
        if (n > 0) got.append(buf, static_cast<std::size_t>(n));
        return !pusher.paused;
      },
      "the producer to be resumed");
  CHECK(pusher.resumes == 1);
  // The reader goes away: the next write fails with EPIPE, reported as a lost connection.
  ::close(fds[0]);
  t->unregister_producer();
  t->write("into a closed pipe");
  wait_for(reactor, [&] { return lost.has_value(); }, "connection_lost");
  CHECK_FALSE(lost->clean());
  ::close(in[1]);
}
