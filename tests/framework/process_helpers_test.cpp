// get_process_output, get_process_output_and_value and run_process with real children
// (echo, cat, sh, head, sleep); a child that must be stopped is stopped by the helper's
// cancel() or the reactor's shutdown, never left behind.

#include "transports/process_helpers.hpp"

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>

#include <cerrno>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

#include "tests/support/wait.hpp"

using namespace torsion;
using torsion::test::wait_for;

namespace {

// Takes a Deferred's result into a slot the test can wait on.
template <class T>
std::shared_ptr<std::optional<Outcome<T>>> watch(Deferred<T> d) {
  auto slot = std::make_shared<std::optional<Outcome<T>>>();
  d.add_both([slot](Outcome<T> o) { slot->emplace(std::move(o)); });
  return slot;
}

template <class T>
T value_of(Reactor& reactor, const std::shared_ptr<std::optional<Outcome<T>>>& slot) {
  wait_for(reactor, [&] { return slot->has_value(); }, "the helper's Deferred");
  REQUIRE((*slot)->ok());
  return (*slot)->value();
}

template <class E, class T>
bool fails_with(Reactor& reactor, const std::shared_ptr<std::optional<Outcome<T>>>& slot) {
  wait_for(reactor, [&] { return slot->has_value(); }, "the helper's Deferred");
  return error_is<E>((*slot)->error());
}

std::vector<std::string> sh(const std::string& script) { return {"/bin/sh", "-c", script}; }

bool no_children() {
  int raw = 0;
  return ::waitpid(-1, &raw, WNOHANG) == -1 && errno == ECHILD;
}

Task<ProcessOutput> reverse_through_rev(Reactor& reactor, std::string text) {
  // (a local argv: g++ 12 cannot take a braced list as an argument inside a coroutine)
  const std::vector<std::string> rev{"rev"};
  ProcessRunOptions options;
  options.input = std::move(text);
  ProcessOutput first = co_await run_process(reactor, rev, options);
  options.input = first.out;
  co_return co_await run_process(reactor, rev, options);
}

}  // namespace

TEST_CASE("get_process_output fires with the child's stdout") {
  Reactor reactor;
  auto got = watch(get_process_output(reactor, {"echo", "hello", "world"}));
  CHECK(value_of(reactor, got) == "hello world\n");
  wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "the child to be gone");
  CHECK(no_children());
}

TEST_CASE("get_process_output ignores the exit code but fails on stderr, unless errortoo") {
  Reactor reactor;
  CHECK(value_of(reactor, watch(get_process_output(reactor, sh("echo out; exit 3")))) ==
        "out\n");

  auto noisy = watch(get_process_output(reactor, sh("echo out; echo oops >&2")));
  REQUIRE(fails_with<ProcessError>(reactor, noisy));
  try {
    std::rethrow_exception((*noisy)->error());
  } catch (const ProcessError& e) {
    CHECK(e.output().out == "out\n");
    CHECK(e.output().err == "oops\n");
    CHECK(std::string(e.what()).find("oops") != std::string::npos);
  }

  ProcessRunOptions errortoo;
  errortoo.errortoo = true;
  // (stdout and stderr are two pipes: their relative order is not kept, so one stream)
  CHECK(value_of(reactor, watch(get_process_output(reactor, sh("echo oops >&2; echo more >&2"),
                                                   errortoo))) == "oops\nmore\n");
}

TEST_CASE("get_process_output fails for a child killed by a signal") {
  Reactor reactor;
  auto killed = watch(get_process_output(reactor, sh("echo partial; kill -KILL $$")));
  REQUIRE(fails_with<ProcessError>(reactor, killed));
  try {
    std::rethrow_exception((*killed)->error());
  } catch (const ProcessError& e) {
    CHECK(e.output().status.signal == SIGKILL);
    CHECK(e.output().out == "partial\n");
  }
}

TEST_CASE("get_process_output_and_value gives stdout, stderr and the status whatever it is") {
  Reactor reactor;
  const auto& r = value_of(reactor, watch(get_process_output_and_value(
                                        reactor, sh("echo out; echo err >&2; exit 3"))));
  CHECK(r.out == "out\n");
  CHECK(r.err == "err\n");
  CHECK(r.status.exit_code == 3);

  const auto& k = value_of(reactor, watch(get_process_output_and_value(reactor, sh("kill -TERM $$"))));
  CHECK(k.status.signal == SIGTERM);
}

TEST_CASE("process helpers write the input and close stdin") {
  Reactor reactor;
  ProcessRunOptions options;
  options.input = std::string(200 * 1024, 'i');  // more than a pipe holds
  const auto& r = value_of(reactor, watch(get_process_output_and_value(reactor, {"cat"}, options)));
  CHECK(r.out == options.input);
  CHECK(r.status.success());
  // No input: stdin is closed at once, so cat ends.
  CHECK(value_of(reactor, watch(get_process_output(reactor, {"cat"}))).empty());
}

TEST_CASE("process helpers bound the output they keep") {
  Reactor reactor;
  ProcessRunOptions options;
  options.max_output = 1000;
  auto got = watch(get_process_output(reactor, {"head", "-c", "10000000", "/dev/zero"}, options));
  REQUIRE(fails_with<ProcessError>(reactor, got));
  try {
    std::rethrow_exception((*got)->error());
  } catch (const ProcessError& e) {
    CHECK(e.output().out.size() == 1000);
    CHECK(e.output().status.signal == SIGKILL);
  }
  CHECK(no_children());
}

TEST_CASE("cancelling a process helper kills the child, which is still reaped") {
  Reactor reactor;
  auto d = get_process_output(reactor, {"sleep", "1000"});
  auto got = watch(d);
  wait_for(reactor, [&] { return reactor.connection_count() > 0; }, "the child to run");
  CHECK(d.cancel());
  REQUIRE(got->has_value());  // fails at once
  CHECK(error_is<CancelledError>((*got)->error()));
  wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "the killed child to be reaped");
  CHECK(no_children());
}

TEST_CASE("process helpers throw what spawn_process throws for a program that cannot start") {
  Reactor reactor;
  CHECK_THROWS_AS((void)get_process_output(reactor, {"/nonexistent/program"}), std::system_error);
  auto t = run_process(reactor, {"/nonexistent/program"});
  auto got = watch(t.deferred());
  CHECK(fails_with<std::system_error>(reactor, got));
  CHECK(reactor.connection_count() == 0);
}

TEST_CASE("run_process: a coroutine awaits children in turn") {
  Reactor reactor;
  auto got = watch(reverse_through_rev(reactor, "stressed\n").deferred());
  const auto& r = value_of(reactor, got);
  CHECK(r.out == "stressed\n");  // reversed twice
  CHECK(r.status.success());
}

TEST_CASE("process helpers: a reactor shutdown ends the child and the result still arrives") {
  Reactor reactor;
  auto got = watch(get_process_output_and_value(reactor, {"sleep", "1000"}));
  reactor.call_soon([&] { reactor.shutdown(); });
  reactor.run();
  REQUIRE(got->has_value());
  REQUIRE((*got)->ok());
  CHECK((*got)->value().status.signal == SIGTERM);
  CHECK(no_children());
}
