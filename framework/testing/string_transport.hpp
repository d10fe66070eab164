#pragma once
/// \file
/// StringTransport: an in-memory Transport that records what a protocol does.

#include <cstddef>
#include <string>
#include <string_view>

#include "framework/protocol.hpp"
#include "framework/reason.hpp"
#include "framework/detail/flow_control.hpp"
#include "framework/transport.hpp"

namespace torsion::testing {

/// A Transport for unit-testing protocols without sockets (Twisted's StringTransport).
/// It records written bytes (value()), close requests, producer registration and
/// pause/resume of reading, and lets the test feed input (receive, receive_eof) and end
/// the connection with any Reason (disconnect).
///
/// Everything is synchronous and nothing happens by itself: a lose_connection() is only
/// recorded (disconnecting() turns true and later writes are dropped); the test decides
/// when the protocol hears connection_lost by calling disconnect(). Exceptions thrown by
/// the protocol propagate out of connect/receive/disconnect to the test, instead of
/// aborting the connection as a real transport would.
///
/// By default every write is "sent" at once (buffer_size() stays 0). With
/// set_buffering(true) writes stay queued until the test calls drain(n), so flow control
/// (water marks, producers) can be tested: a streaming producer is paused when the buffer
/// rises above the high mark (from inside write, as on the real transports) and resumed
/// when drain() brings it to the low mark; a pull producer gets resume_producing() when
/// the buffer is empty and it has written since it was last asked: on registration, at
/// set_write_buffer_limits and whenever drain() empties the buffer (synchronously, unlike
/// the real transports, which ask from the loop). The rules are the engine's own object
/// (framework/detail/flow_control.hpp), so they cannot drift from it. Producers are not resumed after lose_connection or
/// lose_write_connection, and hear stop_producing() when disconnect() ends the connection.
/// With no producer registered, a write made inside data_received that takes the buffer
/// above the high mark holds input back (as paused reading does) until drain() brings the
/// buffer to the low mark (set_pause_reading_when_full, on by default; it can only
/// happen with buffering on).
///
/// The protocol must outlive the transport's use of it (until disconnect() returns or the
/// test stops using both). Not thread-safe.
class StringTransport final : public Transport {
 public:
  /// Peer and host default to 127.0.0.1:54321 and 127.0.0.1:8000.
  StringTransport();

  /// Attaches `protocol`: it gets make_connection(*this), so connection_made runs now.
  /// Throws std::logic_error if a protocol was attached before.
  void connect(Protocol& protocol);
  /// Ends the connection: the attached protocol hears connection_lost(reason) once (later
  /// calls do nothing); a registered producer hears stop_producing() first. Use
  /// Reason(error::connection_lost) and the like to test the unclean endings.
  void disconnect(const Reason& reason = Reason());
  /// True once disconnect() has delivered connection_lost.
  bool lost() const noexcept { return lost_; }

  /// Feeds `data` to the protocol's data_received, as if read from the peer, now. While
  /// the protocol has paused reading (pause_producing) the bytes are held back, in order,
  /// and delivered together with the next receive() after resume_producing (receive("")
  /// delivers just them). Input after lose_connection/abort_connection is ignored, as a
  /// real transport stops reading. Throws std::logic_error before connect().
  void receive(std::string_view data);
  /// Delivers end-of-file from the peer after any held-back input, as a real transport
  /// does: eof_received() is called, and if it returns false the transport's
  /// lose_connection() is called (recorded: disconnecting() turns true). While reading is
  /// paused the EOF is held back until the next receive(). If lose_write_connection()
  /// was called before, both directions are now shut: lose_connection() is recorded
  /// whatever eof_received() returns. Throws std::logic_error before connect().
  void receive_eof();
  /// Bytes held back because reading is paused.
  std::size_t held_back() const noexcept { return held_.size(); }

  /// Everything "sent" so far (not what is still buffered).
  const std::string& value() const noexcept { return sent_; }
  /// Forgets what was sent.
  void clear() noexcept { sent_.clear(); }
  /// Returns value() and clears it.
  std::string take();

  /// Keep writes buffered until drain() (see the class comment).
  void set_buffering(bool on) { buffering_ = on; }
  /// Moves up to `n` buffered bytes to value() and applies flow-control rules.
  void drain(std::size_t n = static_cast<std::size_t>(-1));

  /// Sets what get_peer() returns (default 127.0.0.1:54321).
  void set_peer(Address peer) { peer_ = std::move(peer); }
  /// Sets what get_host() returns (default 127.0.0.1:8000).
  void set_host(Address host) { host_ = std::move(host); }

  /// lose_connection() was called.
  bool disconnecting() const noexcept { return lose_called_; }
  /// abort_connection() was called.
  bool aborted() const noexcept { return abort_called_; }
  /// lose_write_connection() was called.
  bool write_closed() const noexcept { return write_closed_; }
  /// The transport's reading is paused (the protocol called pause_producing()).
  bool reading_paused() const noexcept { return reading_paused_; }
  /// The registered producer, or null.
  Producer* producer() const noexcept { return flow_.producer(); }
  /// Whether the registered producer is a streaming (push) producer.
  bool streaming() const noexcept { return flow_.streaming(); }
  /// Whether flow control has currently paused the registered streaming producer.
  bool producer_paused() const noexcept { return flow_.paused(); }

  // Transport: the calls are recorded as described above.
  void lose_connection() override;
  void abort_connection() override;
  void lose_write_connection() override {
    if (connected()) write_closed_ = true;
  }
  Address get_peer() const override { return peer_; }
  Address get_host() const override { return host_; }
  std::size_t buffer_size() const override { return buffered_.size(); }
  void register_producer(Producer& producer, bool streaming) override;
  void unregister_producer() override;
  void set_write_buffer_limits(std::size_t high, std::size_t low) override;
  WriteBufferLimits write_buffer_limits() const override { return flow_.limits(); }
  bool connected() const override { return connected_ && !lose_called_ && !abort_called_; }
  void set_pause_reading_when_full(bool enabled) override;
  bool pauses_reading_when_full() const override { return flow_.hold_reads(); }
  void pause_producing() override { reading_paused_ = true; }
  void resume_producing() override { reading_paused_ = false; }
  void stop_producing() override { lose_connection(); }

 protected:
  void write_bytes(std::string_view data) override;

 private:
  void deliver(std::string_view data, bool eof);

  // The host of the flow-control rules (framework/detail/flow_control.hpp): a producer is
  // called directly (its exceptions reach the test), held input waits for the next
  // receive(), and a due pull producer is asked at once.
  friend class torsion::detail::FlowControl;
  std::size_t flow_buffered() const noexcept { return buffered_.size(); }
  bool flow_delivering() const noexcept { return delivering_; }
  bool flow_may_resume() const noexcept { return connected() && !write_closed_; }
  template <class F>
  void flow_call(const char*, F&& fn) {
    fn();
  }
  void flow_reads_released() noexcept {}
  void flow_pull_due() { flow_.ask_pull(*this); }

  Address peer_;
  Address host_;
  Protocol* protocol_ = nullptr;
  std::string sent_;
  std::string buffered_;
  std::string held_;  // input held back while reading is paused
  torsion::detail::FlowControl flow_;  // the producer, the marks, input held by them
  bool buffering_ = false;
  bool connected_ = false;
  bool lost_ = false;
  bool lose_called_ = false;
  bool abort_called_ = false;
  bool write_closed_ = false;
  bool reading_paused_ = false;
  bool delivering_ = false;  // inside data_received
  bool eof_held_ = false;
  bool eof_seen_ = false;
};

}  // namespace torsion::testing
