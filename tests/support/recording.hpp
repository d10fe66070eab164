#pragma once
// A protocol that records every event into a Record the test owns (the transport owns
// and destroys the protocol), and checks the promised order: connection_made once, data
// only between made and lost, connection_lost exactly once.

#include <doctest/doctest.h>

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "framework/protocol.hpp"

namespace torsion::test {

struct Record {
  int made = 0;
  int lost = 0;
  int eofs = 0;
  std::string received;
  std::optional<Reason> reason;
  Transport* transport = nullptr;  // valid while made && !lost

  // Optional behaviour, set by the test.
  std::function<void(Record&)> on_made;
  std::function<void(Record&, std::string_view)> on_data;
  std::function<void(Record&)> on_lost;
  bool keep_open_on_eof = false;

  bool done() const { return lost > 0; }
};

class Recording : public Protocol {
 public:
  explicit Recording(Record& record) : r_(record) {}

  void connection_made() override {
    CHECK(r_.made == 0);
    CHECK(r_.lost == 0);
    ++r_.made;
    r_.transport = &transport();
    if (r_.on_made) r_.on_made(r_);
  }
  void data_received(std::string_view data) override {
    CHECK(r_.made == 1);
    CHECK(r_.lost == 0);
    r_.received.append(data);
    if (r_.on_data) r_.on_data(r_, data);
  }
  bool eof_received() override {
    ++r_.eofs;
    return r_.keep_open_on_eof;
  }
  void connection_lost(const Reason& reason) override {
    CHECK(r_.made == 1);
    CHECK(r_.lost == 0);
    ++r_.lost;
    r_.reason = reason;
    if (r_.on_lost) r_.on_lost(r_);
    r_.transport = nullptr;
  }

 private:
  Record& r_;
};

// Server side: one Record per accepted connection, configured by `setup`.
class RecordingFactory : public Factory {
 public:
  std::deque<Record> records;
  std::function<void(Record&)> setup;
  std::unique_ptr<Protocol> build_protocol(const Address&) override {
    Record& r = records.emplace_back();
    if (setup) setup(r);
    return std::make_unique<Recording>(r);
  }
};

// Client side: one Record per connection, plus the connector events.
class RecordingClientFactory : public ClientFactory {
 public:
  std::deque<Record> records;
  std::function<void(Record&)> setup;
  int started = 0;
  int failed = 0;
  int lost = 0;
  std::optional<Reason> failure;
  std::optional<Reason> lost_reason;

  std::unique_ptr<Protocol> build_protocol(const Address&) override {
    Record& r = records.emplace_back();
    if (setup) setup(r);
    return std::make_unique<Recording>(r);
  }
  void started_connecting(Connector&) override { ++started; }
  void client_connection_failed(Connector&, const Reason& reason) override {
    ++failed;
    failure = reason;
  }
  void client_connection_lost(Connector&, const Reason& reason) override {
    CHECK(!records.empty());
    CHECK(records.back().lost == 1);  // after the protocol heard it
    ++lost;
    lost_reason = reason;
  }
};

}  // namespace torsion::test
