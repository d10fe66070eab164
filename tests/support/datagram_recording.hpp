#pragma once
// A datagram protocol that records every event and checks the promised order:
// started_listening once, then datagrams/refusals/errors, then stopped_listening once.

#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "framework/datagram.hpp"

namespace torsion::test {

class DatagramRecording : public DatagramProtocol {
 public:
  struct Received {
    std::string data;
    Address from;
  };
  int started = 0;
  int stopped = 0;
  int refused = 0;
  std::vector<Received> received;
  std::vector<Reason> errors;
  // Optional behaviour, set by the test.
  std::function<void(DatagramRecording&, std::string_view, const Address&)> on_datagram;

  void started_listening() override {
    CHECK(started == 0);
    ++started;
  }
  void datagram_received(std::string_view data, const Address& from) override {
    CHECK(started == 1);
    CHECK(stopped == 0);
    received.push_back({std::string(data), from});
    if (on_datagram) on_datagram(*this, data, from);
  }
  void connection_refused() override {
    CHECK(started == 1);
    CHECK(stopped == 0);
    ++refused;
  }
  void error_received(const Reason& reason) override {
    CHECK(started == 1);
    CHECK(stopped == 0);
    errors.push_back(reason);
  }
  void stopped_listening() override {
    CHECK(started == 1);
    CHECK(stopped == 0);
    ++stopped;
  }
  std::vector<std::string> payloads() const {
    std::vector<std::string> out;
    for (auto& r : received) out.push_back(r.data);
    return out;
  }
};

}  // namespace torsion::test
