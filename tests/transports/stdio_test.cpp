#include "transports/stdio.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <stdexcept>
#include <string>

#include "tests/support/recording.hpp"
#include "tests/support/settle.hpp"
#include "tests/support/wait.hpp"

using namespace torsion;
using torsion::test::Record;
using torsion::test::Recording;
using torsion::test::wait_for;

namespace {

struct Pipe {
  int fds[2] = {-1, -1};
  Pipe() { REQUIRE(::pipe2(fds, O_CLOEXEC) == 0); }
  ~Pipe() {
    close_read();
    close_write();
  }
  int r() const { return fds[0]; }
  int w() const { return fds[1]; }
  void close_read() {
    if (fds[0] >= 0) ::close(std::exchange(fds[0], -1));
  }
  void close_write() {
    if (fds[1] >= 0) ::close(std::exchange(fds[1], -1));
  }
};

bool nonblocking(int fd) { return (::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0; }

// Reads what is available now from a descriptor the test owns (made non-blocking).
std::string drain(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  std::string out;
  char buf[4096];
  for (;;) {
    const auto n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::fcntl(fd, F_SETFL, flags);
  return out;
}

}  // namespace

TEST_CASE("stdio runs a protocol as a filter and closes on end-of-file") {
  Reactor reactor;
  Pipe input;
  Pipe output;
  Record record;
  record.on_data = [](Record& r, std::string_view data) {
    std::string upper(data);
    for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    r.transport->write(upper);
  };
  StdioOptions options{input.r(), output.w()};
  auto transport = connect_stdio(reactor, std::make_unique<Recording>(record), options);
  wait_for(reactor, [&] { return record.made == 1; }, "connection_made");
  CHECK(record.transport->get_peer() == Address());
  CHECK(nonblocking(input.r()));  // shared file description, restored at close
  REQUIRE(::write(input.w(), "hello\n", 6) == 6);
  wait_for(reactor, [&] { return record.received == "hello\n"; }, "the input");
  std::string got;
  wait_for(reactor, [&] { got += drain(output.r()); return got == "HELLO\n"; }, "the output");
  input.close_write();  // end-of-file on "stdin"
  wait_for(reactor, [&] { return record.done(); }, "connection_lost");
  CHECK(record.reason->clean());
  CHECK(record.eofs == 1);
  CHECK(reactor.connection_count() == 0);
  // The transport closed its duplicate of the output: the reader now sees end-of-file
  // once our own write end is closed too; the original descriptors are still open.
  CHECK(::fcntl(output.w(), F_GETFD) != -1);
  CHECK_FALSE(nonblocking(input.r()));
  CHECK_FALSE(nonblocking(output.w()));
}

TEST_CASE("stdio lose_connection flushes a large write then closes the output") {
  Reactor reactor;
  Pipe input;
  Pipe output;
  Record record;
  const std::string big(256 * 1024, 'b');  // more than a pipe holds
  record.on_made = [&](Record& r) {
    r.transport->write(big);
    r.transport->lose_connection();
  };
  auto transport = connect_stdio(reactor, std::make_unique<Recording>(record),
                                 StdioOptions{input.r(), output.w()});
  output.close_write();  // the transport's duplicate is the last write end
  std::string got;
  wait_for(reactor, [&] {
    got += drain(output.r());
    return record.done() && got.size() == big.size();
  }, "the whole write");
  CHECK(got == big);
  CHECK(record.reason->clean());
  char c;
  CHECK(::read(output.r(), &c, 1) == 0);  // end-of-file: every write end is closed
}

TEST_CASE("stdio half-close keeps writing after end-of-file when asked") {
  Reactor reactor;
  Pipe input;
  Pipe output;
  Record record;
  record.keep_open_on_eof = true;
  auto transport = connect_stdio(reactor, std::make_unique<Recording>(record),
                                 StdioOptions{input.r(), output.w()});
  input.close_write();
  wait_for(reactor, [&] { return record.eofs == 1; }, "eof_received");
  CHECK(record.lost == 0);
  record.transport->write("after eof");
  record.transport->lose_connection();
  wait_for(reactor, [&] { return record.done(); }, "the close");
  CHECK(drain(output.r()) == "after eof");
}

TEST_CASE("stdio bad arguments") {
  Reactor reactor;
  Record record;
  CHECK_THROWS_AS(connect_stdio(reactor, nullptr), std::invalid_argument);
  CHECK_THROWS_AS(connect_stdio(reactor, std::make_unique<Recording>(record), StdioOptions{-1, 1}),
                  std::invalid_argument);
  CHECK_THROWS_AS(connect_stdio(reactor, std::make_unique<Recording>(record), StdioOptions{0, 9999}),
                  std::system_error);
  test::settle(reactor);  // anything the failed calls had queued would have run
  CHECK(record.made == 0);
}
