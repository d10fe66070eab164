#include "transports/fd_watch.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>
#include <system_error>

#include "framework/log.hpp"
#include "tests/support/settle.hpp"
#include "tests/support/wait.hpp"

using namespace torsion;
using torsion::test::wait_for;

namespace {

struct Pipe {
  int fds[2] = {-1, -1};
  Pipe() { REQUIRE(::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0); }
  ~Pipe() {
    for (int fd : fds)
      if (fd >= 0) ::close(fd);
  }
  int in() const { return fds[0]; }
  int out() const { return fds[1]; }
};

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

// Before checking that a callback did NOT run: every descriptor ready now is handled by
// the time this returns (tests/support/settle.hpp), so a watch that should not fire
// would have fired.
void spin(Reactor& reactor) { test::settle(reactor); }

}  // namespace

TEST_CASE("add_reader fires while the descriptor stays readable and removes itself safely") {
  Reactor reactor;
  Pipe pipe;
  int calls = 0;
  add_reader(reactor, pipe.in(), [&] {
    ++calls;  // reads nothing: the pipe stays readable
    if (calls == 3) CHECK(remove_reader(reactor, pipe.in()));
  });
  spin(reactor);
  CHECK(calls == 0);  // nothing to read yet
  REQUIRE(::write(pipe.out(), "x", 1) == 1);
  wait_for(reactor, [&] { return calls == 3; }, "three calls on one readable byte");
  spin(reactor);
  CHECK(calls == 3);  // removed inside its own callback: never called again
  CHECK_FALSE(remove_reader(reactor, pipe.in()));
  CHECK(is_open(pipe.in()));  // the user's descriptor is untouched
  char c = 0;
  CHECK(::read(pipe.in(), &c, 1) == 1);
}

TEST_CASE("add_reader stops firing once the data is consumed, and again on new data") {
  Reactor reactor;
  Pipe pipe;
  std::string got;
  add_reader(reactor, pipe.in(), [&] {
    char buf[16];
    const auto n = ::read(pipe.in(), buf, sizeof buf);
    if (n > 0) got.append(buf, static_cast<std::size_t>(n));
  });
  REQUIRE(::write(pipe.out(), "ab", 2) == 2);
  wait_for(reactor, [&] { return got == "ab"; }, "ab");
  REQUIRE(::write(pipe.out(), "cd", 2) == 2);
  wait_for(reactor, [&] { return got == "abcd"; }, "cd");
  CHECK(remove_reader(reactor, pipe.in()));
  REQUIRE(::write(pipe.out(), "ef", 2) == 2);
  spin(reactor);
  CHECK(got == "abcd");
}

TEST_CASE("add_writer fires while writable; reader and writer on one descriptor are independent") {
  Reactor reactor;
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == 0);
  int writes = 0;
  int reads = 0;
  // A callback that never makes the descriptor unready keeps Asio's poll busy, so it
  // removes itself: run_until checks its condition only between polls.
  add_writer(reactor, sv[0], [&] {
    if (++writes == 3) CHECK(remove_writer(reactor, sv[0]));
  });
  add_reader(reactor, sv[0], [&] {
    ++reads;
    char buf[8];
    (void)::read(sv[0], buf, sizeof buf);
  });
  wait_for(reactor, [&] { return writes == 3; }, "repeated writability");
  CHECK_FALSE(remove_writer(reactor, sv[0]));
  const int frozen = writes;
  REQUIRE(::write(sv[1], "r", 1) == 1);
  wait_for(reactor, [&] { return reads >= 1; }, "the reader still works");
  spin(reactor);
  CHECK(writes == frozen);
  // Replacing a callback: the new one runs instead of the old.
  int replaced = 0;
  add_reader(reactor, sv[0], [&] {
    ++replaced;
    char buf[8];
    (void)::read(sv[0], buf, sizeof buf);
  });
  REQUIRE(::write(sv[1], "s", 1) == 1);
  wait_for(reactor, [&] { return replaced == 1; }, "the replacement reader");
  CHECK(reads == 1);
  CHECK(remove_reader(reactor, sv[0]));
  CHECK(is_open(sv[0]));
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST_CASE("a reader that removes another watch and a throwing callback") {
  Reactor reactor;
  Pipe a;
  Pipe b;
  int a_calls = 0;
  int b_calls = 0;
  set_log_sink([](LogLevel, std::string_view) {});
  add_reader(reactor, a.in(), [&] {
    ++a_calls;
    remove_reader(reactor, b.in());
    remove_reader(reactor, a.in());
    throw std::runtime_error("logged, not fatal");
  });
  add_reader(reactor, b.in(), [&] { ++b_calls; });
  REQUIRE(::write(a.out(), "x", 1) == 1);
  wait_for(reactor, [&] { return a_calls == 1; }, "the first reader");
  REQUIRE(::write(b.out(), "y", 1) == 1);
  spin(reactor);
  set_log_sink({});
  CHECK(a_calls == 1);
  CHECK(b_calls == 0);
}

TEST_CASE("add_reader rejects what it cannot watch") {
  Reactor reactor;
  CHECK_THROWS_AS(add_reader(reactor, -1, [] {}), std::invalid_argument);
  Pipe pipe;
  CHECK_THROWS_AS(add_reader(reactor, pipe.in(), nullptr), std::invalid_argument);
  char path[] = "/tmp/torsion-fdwatch-XXXXXX";
  const int file = ::mkstemp(path);
  REQUIRE(file >= 0);
  ::unlink(path);
  CHECK_THROWS_AS(add_reader(reactor, file, [] {}), std::system_error);  // regular file: EPERM
  ::close(file);
  CHECK_FALSE(remove_writer(reactor, pipe.out()));
}

TEST_CASE("watches still registered when the reactor is destroyed leave the descriptor open") {
  Pipe pipe;
  {
    Reactor reactor;
    add_reader(reactor, pipe.in(), [] {});
    int writes = 0;
    add_writer(reactor, pipe.out(), [&] {
      if (++writes == 2) reactor.stop();
    });
    wait_for(reactor, [&] { return writes >= 2; }, "the writer");
  }
  CHECK(is_open(pipe.in()));
  CHECK(is_open(pipe.out()));
}
