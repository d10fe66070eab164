#pragma once
// Private: the outgoing flow-control rules, written once for every stream transport (the
// stream engine, testing's LoopbackTransport and StringTransport). FlowControl keeps the
// registered producer and how it is paced, the write-buffer marks, and whether reading is
// held back by a full buffer, and it decides:
//  - after a write: above the high mark a streaming producer is paused; with no producer,
//    a write made inside this connection's data_received holds its reading back
//    (back-pressure by default, set_pause_reading_when_full); an empty buffer makes a pull
//    producer due;
//  - after the buffer shrank: at the low mark held reading goes on and a paused streaming
//    producer is resumed; an empty buffer makes a pull producer due. Nobody is resumed or
//    asked once the connection is closing or its write side is shut;
//  - a pull producer is asked (ask_pull) only when the buffer is empty and it has written
//    since it was last asked, so that one with nothing to say is not spun on.
// The transport, the host, keeps only what differs between them: how its buffer is
// measured, how a producer callback is guarded, and from where held reading restarts and a
// due pull producer is asked (the engine posts to the loop; Loopback asks from its pump;
// StringTransport asks at once, from drain() and register_producer()). A host provides:
//   std::size_t flow_buffered() const     bytes written and not yet sent
//   bool flow_delivering() const          inside this connection's data_received
//   bool flow_may_resume() const          open and writing: producers may be resumed
//   void flow_call(const char* what, F)   runs a producer callback, guarded
//   void flow_reads_released()            reading held by the marks may go on
//   void flow_pull_due()                  a pull producer is due: call ask_pull soon

#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>

#include "framework/transport.hpp"

namespace torsion::detail {

class FlowControl {
 public:
  Producer* producer() const noexcept { return producer_; }
  bool streaming() const noexcept { return streaming_; }
  /// A streaming producer, paused above the high mark.
  bool paused() const noexcept { return paused_; }
  /// Reading is held back: a write inside data_received took the buffer above the high
  /// mark, with no producer registered.
  bool read_held() const noexcept { return read_held_; }
  bool hold_reads() const noexcept { return hold_reads_; }
  const WriteBufferLimits& limits() const noexcept { return limits_; }

  // Every write clears this: a pull producer that wrote may be asked again.
  void wrote() noexcept { pull_wanted_ = false; }
  // A pull producer was asked and has not written since.
  bool pull_wanted() const noexcept { return pull_wanted_; }

  // register_producer: throws std::logic_error if a producer is registered already. On a
  // closed connection `p` hears stop_producing at once; else it is registered unpaused,
  // held reading goes on (the producer is paced instead), a streaming producer is paused
  // at once if the buffer is above the high mark, and a pull producer is due if it is
  // empty.
  template <class Host>
  void attach(Host& host, Producer& p, bool is_streaming, bool closed) {
    if (producer_) throw std::logic_error("register_producer: a producer is already registered");
    if (closed) {
      p.stop_producing();
      return;
    }
    producer_ = &p;
    streaming_ = is_streaming;
    paused_ = false;
    pull_wanted_ = false;
    release_reads(host);
    if (streaming_)
      check_high(host);
    else if (host.flow_buffered() == 0)
      host.flow_pull_due();
  }

  // unregister_producer.
  void detach() noexcept {
    producer_ = nullptr;
    paused_ = false;
    pull_wanted_ = false;
  }

  // The connection is gone: returns the producer (to hear stop_producing), forgotten here.
  Producer* take() noexcept {
    paused_ = false;
    return std::exchange(producer_, nullptr);
  }

  // set_write_buffer_limits: throws std::invalid_argument if low exceeds high; then both
  // marks are checked against the buffer as it is.
  template <class Host>
  void set_limits(Host& host, std::size_t high, std::size_t low) {
    if (low > high)
      throw std::invalid_argument("set_write_buffer_limits: low (" + std::to_string(low) +
                                  ") must not exceed high (" + std::to_string(high) + ")");
    limits_ = {high, low};
    check_high(host);
    check_low(host);
  }

  // set_pause_reading_when_full.
  template <class Host>
  void set_hold_reads(Host& host, bool enabled) {
    hold_reads_ = enabled;
    if (!enabled) release_reads(host);
  }

  // The end of every write that was queued or sent (on an open connection).
  template <class Host>
  void after_write(Host& host) {
    if (host.flow_buffered() == 0) {
      if (producer_ && !streaming_) host.flow_pull_due();  // it all left at once
    } else {
      check_high(host);
    }
  }

  // Above the high mark: pause a streaming producer; with none registered and the write
  // made inside data_received (an answer to what was read), hold reading back. Writes made
  // elsewhere (a client's upload, a push from a timer) never hold their own connection's
  // reading: a peer that echoes what we send would otherwise wait for us to read while we
  // wait for it to.
  template <class Host>
  void check_high(Host& host) {
    if (host.flow_buffered() <= limits_.high) return;
    if (producer_ == nullptr) {
      if (hold_reads_ && host.flow_delivering()) read_held_ = true;
    } else if (streaming_ && !paused_) {
      paused_ = true;
      Producer* p = producer_;
      host.flow_call("pause_producing", [p] { p->pause_producing(); });
    }
  }

  // After the buffer shrank: at the low mark held reading goes on and a paused streaming
  // producer resumes; an empty buffer makes a pull producer due.
  template <class Host>
  void check_low(Host& host) {
    const std::size_t buffered = host.flow_buffered();
    if (buffered <= limits_.low) release_reads(host);
    if (!producer_ || !host.flow_may_resume()) return;
    if (streaming_) {
      if (paused_ && buffered <= limits_.low) {
        paused_ = false;
        Producer* p = producer_;
        host.flow_call("resume_producing", [p] { p->resume_producing(); });
      }
    } else if (buffered == 0) {
      host.flow_pull_due();
    }
  }

  // Asks a pull producer for more if it is due: registered, the connection writing, the
  // buffer empty, and it has written since it was last asked. Returns whether it was asked.
  template <class Host>
  bool ask_pull(Host& host) {
    if (!producer_ || streaming_ || pull_wanted_ || !host.flow_may_resume() ||
        host.flow_buffered() != 0)
      return false;
    pull_wanted_ = true;
    Producer* p = producer_;
    host.flow_call("resume_producing", [p] { p->resume_producing(); });
    return true;
  }

 private:
  template <class Host>
  void release_reads(Host& host) {
    if (!read_held_) return;
    read_held_ = false;
    host.flow_reads_released();
  }

  Producer* producer_ = nullptr;
  bool streaming_ = false;
  bool paused_ = false;
  bool pull_wanted_ = false;
  bool hold_reads_ = true;  // set_pause_reading_when_full
  bool read_held_ = false;
  WriteBufferLimits limits_;
};

}  // namespace torsion::detail
