#include "framework/reason.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <ostream>
#include <string>

#include "framework/address.hpp"

using torsion::Address;
using torsion::error;
using torsion::Reason;

TEST_CASE("a default reason is a clean close") {
  Reason r;
  CHECK(r.clean());
  CHECK(r.kind() == error::connection_done);
  CHECK_FALSE(r.cause());
  CHECK(r.message() == "connection closed cleanly");
}

TEST_CASE("os errors map to kinds and keep the cause") {
  auto refused = Reason::from_os_error(std::error_code(ECONNREFUSED, std::system_category()));
  CHECK(refused.is(error::connection_refused));
  CHECK(refused.message().find("connection refused") == 0);
  CHECK(refused.cause().value() == ECONNREFUSED);
  auto reset = Reason::from_os_error(std::error_code(ECONNRESET, std::system_category()), "x");
  CHECK(reset.is(error::connection_lost));
  CHECK_FALSE(reset.clean());
  CHECK(reset.message().find("(x)") != std::string::npos);
  auto timed = Reason::from_os_error(std::error_code(ETIMEDOUT, std::system_category()));
  CHECK(timed.is(error::timed_out));
}

TEST_CASE("a reason's message says each thing once") {
  const auto os = [](int e) { return std::error_code(e, std::system_category()); };
  CHECK(Reason::from_os_error(os(ECONNREFUSED), "127.0.0.1:1").message() ==
        "connection refused (127.0.0.1:1)");
  CHECK(Reason::from_os_error(os(ETIMEDOUT)).message() == "timed out");
  CHECK(Reason::from_os_error(os(ECANCELED), "x").message() == "cancelled (x)");
  CHECK(Reason(error::connection_aborted, os(ECONNABORTED)).message() == "connection aborted");
  // An OS error that adds something is kept, once.
  CHECK(Reason::from_os_error(os(ECONNRESET)).message() ==
        "connection lost: Connection reset by peer");
  CHECK(Reason(error::connect_failed, os(ENETUNREACH), "10.0.0.1:80").message() ==
        "connect failed: Network is unreachable (10.0.0.1:80)");
  // The cause is kept whether or not its text is shown.
  CHECK(Reason::from_os_error(os(ECONNREFUSED)).cause() == std::errc::connection_refused);
}

TEST_CASE("torsion errors are std::error_codes of the torsion category") {
  std::error_code ec = error::line_too_long;
  CHECK(ec.category().name() == std::string("torsion"));
  CHECK(ec.message() == "line too long");
  CHECK(ec == error::line_too_long);
}

TEST_CASE("addresses format by family") {
  CHECK(Address::ip("127.0.0.1", 80).to_string() == "127.0.0.1:80");
  CHECK(Address::ip("::1", 80).family() == Address::Family::ipv6);
  CHECK(Address::ip("::1", 80).to_string() == "[::1]:80");
  CHECK(Address::unix_socket("/tmp/s").to_string() == "unix:/tmp/s");
  CHECK(Address().to_string() == "-");
  CHECK(Address::ip("1.2.3.4", 5) == Address::ip("1.2.3.4", 5));
}
