#pragma once
/// \file
/// StringTransport: an in-memory Transport that records what a protocol does.

#include <cstddef>
#include <string>
#include <string_view>

#include "framework/protocol.hpp"
#include "framework/reason.hpp"
#include "framework/transport.hpp"

namespace torsion::testing {

/// A Transport for unit-testing protocols without sockets (Twisted's StringTransport).
/// It records written bytes (value()), close requests, producer registration and
/// pause/resume of reading, and lets the test end the connection with any Reason.
///
/// By default every write is "sent" at once (buffer_size() stays 0). With
/// set_buffering(true) writes stay queued until the test calls drain(n), so flow control
/// (water marks, producers) can be tested: a streaming producer is paused above the high
/// mark and resumed at the low mark, a pull producer is resumed whenever drain() empties
/// the buffer — the same rules as the real transports, applied synchronously.
class StringTransport final : public Transport {
 public:
  /// Peer and host default to 127.0.0.1:54321 and 127.0.0.1:8000.
  StringTransport();

  /// Attaches `protocol`: it gets make_connection(*this), so connection_made runs now.
  void connect(Protocol& protocol);
  /// Ends the connection: the attached protocol hears connection_lost(reason) once (later
  /// calls do nothing); a registered producer hears stop_producing() first.
  void disconnect(const Reason& reason = Reason());

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

  void set_peer(Address peer) { peer_ = std::move(peer); }
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
  Producer* producer() const noexcept { return producer_; }
  /// Whether the registered producer is a streaming (push) producer.
  bool streaming() const noexcept { return streaming_; }
  /// Whether flow control has currently paused the registered streaming producer.
  bool producer_paused() const noexcept { return producer_paused_; }

  // Transport
  void lose_connection() override;
  void abort_connection() override;
  void lose_write_connection() override { write_closed_ = true; }
  Address get_peer() const override { return peer_; }
  Address get_host() const override { return host_; }
  std::size_t buffer_size() const override { return buffered_.size(); }
  void register_producer(Producer& producer, bool streaming) override;
  void unregister_producer() override { producer_ = nullptr; }
  void set_write_buffer_limits(std::size_t high, std::size_t low) override;
  WriteBufferLimits write_buffer_limits() const override { return limits_; }
  bool connected() const override { return connected_ && !lose_called_ && !abort_called_; }
  void pause_producing() override { reading_paused_ = true; }
  void resume_producing() override { reading_paused_ = false; }
  void stop_producing() override { lose_connection(); }

 protected:
  void write_bytes(std::string_view data) override;

 private:
  void check_marks();

  Address peer_;
  Address host_;
  Protocol* protocol_ = nullptr;
  std::string sent_;
  std::string buffered_;
  WriteBufferLimits limits_;
  Producer* producer_ = nullptr;
  bool streaming_ = false;
  bool producer_paused_ = false;
  bool buffering_ = false;
  bool connected_ = false;
  bool lost_ = false;
  bool lose_called_ = false;
  bool abort_called_ = false;
  bool write_closed_ = false;
  bool reading_paused_ = false;
};

}  // namespace torsion::testing
