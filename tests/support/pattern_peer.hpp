#pragma once
// One end of a relayed or forwarded connection, for flow-control tests: it sends the test
// pattern as a streaming producer (paused when its transport's buffer is full) and checks
// the pattern it reads, optionally reading slowly (a nap after every read).

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string_view>

#include "framework/delayed_call.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "tests/support/pattern.hpp"

namespace torsion::test {

// What one end saw.
struct PeerResult {
  std::uint64_t received = 0;
  bool corrupt = false;
  bool eof = false;
  std::optional<Reason> reason;
};

// What an end does once it has sent everything.
enum class AfterSending { half_close, close, stay_open };

// Sends `total` pattern bytes (at most `writes_per_turn` writes of 64 KiB per loop turn,
// paused above the high mark), then does `after`; reads with a pause of `nap` seconds after
// every read (0: at full speed), checking the pattern; stays open after the peer's EOF
// unless `close_on_eof` is set.
class PatternPeer : public Protocol, public Producer {
 public:
  bool close_on_eof = false;

  PatternPeer(Reactor& reactor, std::uint64_t total, double nap, PeerResult& out,
              AfterSending after = AfterSending::half_close, int writes_per_turn = 4)
      : reactor_(reactor), total_(total), nap_(nap), out_(out), after_(after),
        writes_per_turn_(writes_per_turn) {}
  void connection_made() override {
    transport().register_producer(*this, true);
    schedule();
  }
  void pause_producing() override { paused_ = true; }
  void resume_producing() override {
    paused_ = false;
    schedule();
  }
  void stop_producing() override { stopped_ = true; }
  void data_received(std::string_view d) override {
    if (!pattern_stream().matches(out_.received, d)) out_.corrupt = true;
    out_.received += d.size();
    if (nap_ <= 0) return;
    transport().pause_producing();
    wake_ = reactor_.call_later(nap_, guard([this] { transport().resume_producing(); }));
  }
  bool eof_received() override {
    out_.eof = true;
    return !close_on_eof;
  }
  void connection_lost(const Reason& reason) override {
    stopped_ = true;
    out_.reason = reason;
  }

 private:
  void schedule() {
    if (scheduled_ || stopped_) return;
    scheduled_ = true;
    reactor_.call_soon(guard([this] {
      scheduled_ = false;
      for (int i = 0; i < writes_per_turn_ && !paused_ && !stopped_ && sent_ < total_; ++i) {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(64 * 1024, total_ - sent_));
        transport().write(pattern_stream().slice(sent_, n));
        sent_ += n;
      }
      if (stopped_) return;
      if (sent_ == total_) {
        transport().unregister_producer();
        stopped_ = true;
        if (after_ == AfterSending::half_close) transport().lose_write_connection();
        if (after_ == AfterSending::close) transport().lose_connection();
      } else if (!paused_) {
        schedule();
      }
    }));
  }
  Reactor& reactor_;
  std::uint64_t total_, sent_ = 0;
  double nap_;
  PeerResult& out_;
  AfterSending after_;
  int writes_per_turn_;
  ScopedDelayedCall wake_;
  bool paused_ = false, stopped_ = false, scheduled_ = false;
};

}  // namespace torsion::test
