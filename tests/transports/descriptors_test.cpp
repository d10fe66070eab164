// send_descriptors and DescriptorReceiver: SCM_RIGHTS over Unix stream transports. The
// descriptors travel with their first byte and in order with other writes, a bounded
// number per message, and whatever the receiving protocol does not take is closed. The
// last case hands a listening socket to another process, which then serves it.
#include "transports/descriptors.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "framework/log.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/process.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/wait.hpp"
#include "transports/adopt.hpp"
#include "transports/tcp.hpp"

using namespace torsion;
using torsion::test::child_exited;
using torsion::test::fork_child;
using torsion::test::open_descriptors;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::wait_for;

namespace {

// Records data and descriptors; keeps the descriptors listed in `keep` (by position).
class Taker : public Protocol, public DescriptorReceiver {
 public:
  std::string received;
  std::vector<std::size_t> received_before_fds;  // bytes received when each batch came
  std::vector<int> kept;
  std::size_t batches = 0, offered = 0;
  std::size_t keep_first = 0;  // how many of each batch to take
  void data_received(std::string_view d) override { received.append(d); }
  void descriptors_received(std::span<int> fds) override {
    ++batches;
    offered += fds.size();
    received_before_fds.push_back(received.size());
    for (std::size_t i = 0; i < fds.size() && i < keep_first; ++i) {
      kept.push_back(fds[i]);
      fds[i] = -1;
    }
  }
};

// Builds one protocol of type P and remembers it (valid until its connection_lost).
template <class P>
struct Remembering : Factory {
  P* last = nullptr;
  std::unique_ptr<Protocol> build_protocol(const Address&) override {
    auto p = std::make_unique<P>();
    last = p.get();
    return p;
  }
};

struct Sender : Protocol {};

// A Unix socketpair, both ends served by `reactor`: the sender end and the receiving end
// (a protocol of type P).
template <class P>
struct Pair {
  Reactor reactor;
  Remembering<Sender> senders;
  Remembering<P> receivers;
  Pair() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    adopt_connection(reactor, fds[0], senders);
    adopt_connection(reactor, fds[1], receivers);
    REQUIRE(wait_for(reactor, [&] { return senders.last && receivers.last; }, "both ends"));
  }
  Transport& out() { return senders.last->transport(); }
  P& in() { return *receivers.last; }
};

int open_pipe_end() {
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  ::close(p[0]);
  return p[1];
}


}  // namespace

TEST_CASE("descriptors: sent with their first byte, in order with other writes") {
  Pair<Taker> pair;
  pair.in().keep_first = 2;
  const int a = open_pipe_end(), b = open_pipe_end();
  const std::size_t before = open_descriptors();
  pair.out().write("head:");
  const int both[] = {a, b};
  send_descriptors(pair.out(), both, "fds");
  pair.out().write(":tail");
  REQUIRE(wait_for(pair.reactor, [&] { return pair.in().received == "head:fds:tail"; }, "all bytes"));
  REQUIRE(pair.in().batches == 1);
  CHECK(pair.in().offered == 2);
  CHECK(pair.in().received_before_fds[0] <= 5);  // none of "fds" delivered before them
  REQUIRE(pair.in().kept.size() == 2);
  // The kept ones are the same pipes: what is written to a's copy shows as a's.
  struct stat sa {}, sk {};
  REQUIRE(::fstat(a, &sa) == 0);
  REQUIRE(::fstat(pair.in().kept[0], &sk) == 0);
  CHECK(sa.st_ino == sk.st_ino);
  CHECK((::fcntl(pair.in().kept[0], F_GETFD) & FD_CLOEXEC) != 0);
  // The sender's duplicates are closed once sent: only the two kept copies are new.
  CHECK(open_descriptors() == before + 2);
  for (int fd : pair.in().kept) ::close(fd);
  ::close(a);
  ::close(b);
}

TEST_CASE("descriptors: the ones not taken, or sent to a protocol that takes none, are closed") {
  Pair<Taker> takes_one;
  takes_one.in().keep_first = 1;
  const int a = open_pipe_end(), b = open_pipe_end(), c = open_pipe_end();
  const std::size_t before = open_descriptors();
  const int three[] = {a, b, c};
  send_descriptors(takes_one.out(), three, "x");
  REQUIRE(wait_for(takes_one.reactor, [&] { return takes_one.in().received == "x"; }, "x"));
  CHECK(takes_one.in().offered == 3);
  CHECK(open_descriptors() == before + 1);  // only the one taken
  ::close(takes_one.in().kept.at(0));

  struct Plain : Protocol {
    std::string received;
    void data_received(std::string_view d) override { received.append(d); }
  };
  Pair<Plain> plain;
  const std::size_t before_plain = open_descriptors();
  send_descriptors(plain.out(), three, "y");
  REQUIRE(wait_for(plain.reactor, [&] { return plain.in().received == "y"; }, "y"));
  CHECK(open_descriptors() == before_plain);  // nothing left open in this process
  for (int fd : three) ::close(fd);
}

TEST_CASE("descriptors: two batches back to back each come with their own bytes") {
  Pair<Taker> pair;
  pair.in().keep_first = 1;
  const int a = open_pipe_end(), b = open_pipe_end();
  send_descriptors(pair.out(), std::span<const int>(&a, 1), "one");
  send_descriptors(pair.out(), std::span<const int>(&b, 1), "two");
  REQUIRE(wait_for(pair.reactor, [&] { return pair.in().received == "onetwo"; }, "both"));
  REQUIRE(pair.in().batches == 2);
  CHECK(pair.in().received_before_fds[0] == 0);
  CHECK(pair.in().received_before_fds[1] <= 3);
  struct stat sa {}, sb {}, k0 {}, k1 {};
  REQUIRE(::fstat(a, &sa) == 0);
  REQUIRE(::fstat(b, &sb) == 0);
  REQUIRE(::fstat(pair.in().kept.at(0), &k0) == 0);
  REQUIRE(::fstat(pair.in().kept.at(1), &k1) == 0);
  CHECK(k0.st_ino == sa.st_ino);  // in the order sent
  CHECK(k1.st_ino == sb.st_ino);
  for (int fd : {a, b, pair.in().kept[0], pair.in().kept[1]}) ::close(fd);
}

TEST_CASE("descriptors: refused where they cannot go, nothing queued") {
  Pair<Taker> pair;
  const int a = open_pipe_end();
  std::vector<int> many(max_descriptors_per_message + 1, a);
  CHECK_THROWS_AS(send_descriptors(pair.out(), many, "x"), std::invalid_argument);
  CHECK_THROWS_AS(send_descriptors(pair.out(), std::span<const int>(&a, 1), ""),
                  std::invalid_argument);
  CHECK_THROWS_AS(send_descriptors(pair.out(), std::span<const int>(), "x"),
                  std::invalid_argument);
  const int closed = open_pipe_end();
  ::close(closed);
  const int mixed[] = {a, closed};
  const std::size_t before = open_descriptors();
  CHECK_THROWS_AS(send_descriptors(pair.out(), mixed, "x"), std::system_error);
  CHECK(open_descriptors() == before);  // the duplicate of `a` was closed again
  CHECK(pair.out().buffer_size() == 0);

  // Not a Unix transport: a TCP connection.
  RecordingClientFactory client;
  Remembering<Taker> server;
  TcpListenOptions options;
  options.interface = "127.0.0.1";
  auto port = listen_tcp(pair.reactor, 0, server, options);
  connect_tcp(pair.reactor, "127.0.0.1", port->port(), client);
  REQUIRE(wait_for(pair.reactor, [&] { return !client.records.empty(); }, "tcp connection"));
  CHECK_THROWS_AS(send_descriptors(*client.records[0].transport, std::span<const int>(&a, 1), "x"),
                  std::invalid_argument);
  ::close(a);
}

TEST_CASE("descriptors: a listening socket handed to another process, which serves it") {
  // The child: a Unix connection to the parent (one end of a socketpair), on which it
  // waits for a listening socket; it serves it with a greeting, then exits on SIGTERM.
  int ends[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) == 0);
  const pid_t child = fork_child([&] {
    const int mine = ::fcntl(ends[1], F_DUPFD_CLOEXEC, 3);
    ::close_range(3, static_cast<unsigned>(mine) - 1, 0);  // nothing of the parent's
    ::close_range(static_cast<unsigned>(mine) + 1, ~0U, 0);
    set_log_level(LogLevel::warning);
    Reactor reactor;
    struct Greeter : Protocol {
      void connection_made() override { transport().write("served by the child\n"); }
    };
    auto greeters = make_factory<Greeter>();
    std::shared_ptr<ListeningPort> port;
    struct Waiter : Protocol, DescriptorReceiver {
      Reactor* reactor;
      Factory* serve;
      std::shared_ptr<ListeningPort>* port;
      void descriptors_received(std::span<int> fds) override {
        *port = adopt_listening_socket(*reactor, fds[0], *serve);
        fds[0] = -1;  // the port owns it now
      }
      void data_received(std::string_view) override { transport().write("taken"); }
    };
    FunctionFactory<Factory> waiters([&](const Address&) {
      auto w = std::make_unique<Waiter>();
      w->reactor = &reactor;
      w->serve = &greeters;
      w->port = &port;
      return w;
    });
    adopt_connection(reactor, mine, waiters);
    reactor.run();
    return port && reactor.last_signal() == SIGTERM ? 0 : 5;
  });
  ::close(ends[1]);

  Reactor reactor;
  Remembering<Taker> parent_side;
  adopt_connection(reactor, ends[0], parent_side);
  REQUIRE(wait_for(reactor, [&] { return parent_side.last != nullptr; }, "the Unix connection"));

  // A listening socket the parent made, handed over and then closed here.
  const auto [listener, listener_port] = torsion::test::raw_listener();
  send_descriptors(parent_side.last->transport(), std::span<const int>(&listener, 1), "take it");
  REQUIRE(wait_for(reactor, [&] { return parent_side.last->received == "taken"; }, "the child took it"));
  ::close(listener);  // from now on only the child has it

  RecordingClientFactory client;
  connect_tcp(reactor, "127.0.0.1", listener_port, client);
  REQUIRE(wait_for(reactor, [&] {
    return !client.records.empty() && client.records[0].received == "served by the child\n";
  }, "a greeting from the child"));

  REQUIRE(child > 0);  // the child's pid only, never 0 or -1
  REQUIRE(::kill(child, SIGTERM) == 0);
  int status = -1;
  REQUIRE(wait_for(reactor, [&] { return child_exited(child, status); }, "the child's exit"));
  CHECK(status == 0);
}
