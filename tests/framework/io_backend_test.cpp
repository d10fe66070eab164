// io_backend(): which system interface the reactor runs sockets on. A -Dio_uring=true build
// (tests/io_uring/check.sh runs this suite so) must say io_uring, and the Asio defines must
// have reached this file too, through torsion's dependency: a library and its users that
// disagreed would break Asio's one-definition rule.

#include <doctest/doctest.h>

#include <asio/detail/config.hpp>
#include <string>

#include "framework/reactor.hpp"
#include "framework/io_backend.hpp"
#include "support/wait.hpp"

using namespace torsion;

TEST_CASE("io_backend names the interface this build runs sockets on") {
#if defined(ASIO_HAS_IO_URING_AS_DEFAULT)
  const std::string expected = "io_uring";
#else
  const std::string expected = "epoll";
#endif
  CHECK(std::string(io_backend()) == expected);
  Reactor reactor;  // in an io_uring build, the ring opens here
  bool ran = false;
  reactor.call_soon([&] { ran = true; });
  test::wait_for(reactor, [&] { return ran; }, "a call_soon");
}
