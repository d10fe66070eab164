#include "framework/testing/string_transport.hpp"

#include <doctest/doctest.h>

#include <string>

using torsion::Producer;
using torsion::Protocol;
using torsion::Reason;
using torsion::testing::StringTransport;

namespace {

struct Echo : Protocol {
  int lost = 0;
  void data_received(std::string_view d) override { transport().write(d); }
  void connection_lost(const Reason&) override { ++lost; }
};

struct CountingProducer : Producer {
  int pauses = 0, resumes = 0, stops = 0;
  void pause_producing() override { ++pauses; }
  void resume_producing() override { ++resumes; }
  void stop_producing() override { ++stops; }
};

}  // namespace

TEST_CASE("StringTransport records writes and close requests") {
  StringTransport t;
  Echo echo;
  t.connect(echo);
  echo.data_received("abc");
  CHECK(t.value() == "abc");
  CHECK(t.take() == "abc");
  CHECK(t.value().empty());
  echo.transport().lose_connection();
  CHECK(t.disconnecting());
  echo.transport().write("dropped");
  CHECK(t.value().empty());
  t.disconnect();
  t.disconnect();
  CHECK(echo.lost == 1);
  CHECK_FALSE(echo.has_transport());
}

TEST_CASE("StringTransport applies water marks when buffering") {
  StringTransport t;
  Echo echo;
  t.connect(echo);
  t.set_buffering(true);
  t.set_write_buffer_limits(10, 4);
  CountingProducer p;
  t.register_producer(p, true);
  t.write(std::string(11, 'x'));
  CHECK(p.pauses == 1);
  t.drain(6);  // 5 left: above low
  CHECK(p.resumes == 0);
  t.drain(1);  // 4 left: at low
  CHECK(p.resumes == 1);
  CHECK(t.value().size() == 7);
  t.disconnect();
  CHECK(p.stops == 1);
}
