#include "protocols/relay.hpp"

#include <algorithm>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "framework/log.hpp"

namespace torsion {
namespace {

// One relayed pair: shared by its two sides (and, while connecting, by the outgoing side
// that connect_protocol_with holds), so it lives as long as either connection.
class Pair {
 public:
  Pair(RelayConnect how, std::shared_ptr<RelayStats> counters)
      : connect(std::move(how)), stats(std::move(counters)) {
    if (stats) {
      ++stats->pairs_open;
      ++stats->pairs_total;
    }
  }
  ~Pair() {
    if (stats) --stats->pairs_open;
  }
  Pair(const Pair&) = delete;
  Pair& operator=(const Pair&) = delete;

  RelayConnect connect;
  std::shared_ptr<RelayStats> stats;
  Transport* inbound = nullptr;
  Transport* outbound = nullptr;
  Deferred<void> attempt;  // the outgoing connection, while it is being made
  bool connecting = false;
  std::string early;       // from the client while connecting, at most about a high mark
  bool early_eof = false;  // and its EOF, if it half-closed meanwhile
};

void note_failure(Pair& pair, const std::exception_ptr& error) {
  if (pair.stats) ++pair.stats->failed;
  if (error_is<CancelledError>(error)) return;  // the client left first
  log(LogLevel::warning, "relay: the outgoing connection failed: " + describe_error(error));
}

class Side final : public Protocol {
 public:
  Side(std::shared_ptr<Pair> pair, bool inbound) : pair_(std::move(pair)), inbound_(inbound) {}

  void connection_made() override {
    Pair& p = *pair_;
    mine() = &transport();
    if (inbound_) {
      // Keep reading while the outgoing connection is made, so that a client that leaves
      // meanwhile is noticed at once; what it sends is held (bounded below).
      connect();
      return;
    }
    if (!p.inbound) {  // the client left while we connected
      transport().lose_connection();
      return;
    }
    // What the client sent while we connected goes first, then its EOF if it came.
    if (!p.early.empty()) transport().write(std::exchange(p.early, {}));
    if (p.early_eof) transport().lose_write_connection();
    // Each side produces what the other writes: a full buffer pauses the reader.
    transport().register_producer(*p.inbound, true);
    p.inbound->register_producer(transport(), true);
    p.inbound->resume_producing();
  }

  void data_received(std::string_view data) override {
    Pair& p = *pair_;
    if (Transport* to = other()) {
      to->write(data);
      if (p.stats) p.stats->peak_buffered = std::max(p.stats->peak_buffered, to->buffer_size());
    } else if (inbound_) {  // still connecting: hold it, and stop reading past a bound
      p.early.append(data);
      if (p.early.size() >= transport().write_buffer_limits().high) transport().pause_producing();
    }
  }

  bool eof_received() override {
    if (Transport* to = other()) {
      to->lose_write_connection();
      return true;  // keep the other direction going
    }
    if (!inbound_) return false;
    // EOF while still connecting. With nothing sent, the client is gone: close, which
    // gives the attempt up (connection_lost). After a request, it is a half-close:
    // forward the request and the EOF once connected.
    if (pair_->early.empty()) return false;
    pair_->early_eof = true;
    return true;
  }

  void connection_lost(const Reason&) override {
    Pair& p = *pair_;
    mine() = nullptr;
    if (Transport* to = other()) {
      to->unregister_producer();  // it must not call our dying transport
      to->lose_connection();      // flush what it holds, then close
    } else if (inbound_ && p.connecting) {
      p.attempt.cancel();  // still connecting: give up
    }
  }

 private:
  void connect() {
    Pair& p = *pair_;
    std::weak_ptr<Pair> weak = pair_;
    p.connecting = true;
    try {
      p.attempt = p.connect(std::make_unique<Side>(pair_, false))
                      .add_both([weak](Outcome<Protocol*> outcome) {
                        auto pair = weak.lock();
                        if (!pair) return;
                        pair->connecting = false;
                        if (outcome.ok()) return;
                        note_failure(*pair, outcome.error());
                        if (pair->inbound) pair->inbound->lose_connection();
                      });
    } catch (...) {
      p.connecting = false;
      note_failure(p, std::current_exception());
      transport().lose_connection();
    }
  }

  Transport*& mine() { return inbound_ ? pair_->inbound : pair_->outbound; }
  Transport* other() const { return inbound_ ? pair_->outbound : pair_->inbound; }

  std::shared_ptr<Pair> pair_;
  bool inbound_;
};

}  // namespace

std::unique_ptr<Protocol> relay_protocol(RelayConnect connect, std::shared_ptr<RelayStats> stats) {
  if (!connect) throw std::invalid_argument("relay_protocol: empty connect function");
  return std::make_unique<Side>(std::make_shared<Pair>(std::move(connect), std::move(stats)), true);
}

RelayFactory::RelayFactory(RelayConnect connect) : connect_(std::move(connect)) {
  if (!connect_) throw std::invalid_argument("RelayFactory: empty connect function");
}

std::unique_ptr<Protocol> RelayFactory::build_protocol(const Address&) {
  return relay_protocol(connect_, stats_);
}

}  // namespace torsion
