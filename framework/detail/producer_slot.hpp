#pragma once
// Private: the outgoing flow control's bookkeeping, one copy for every stream transport
// (the stream engine, testing's LoopbackTransport and StringTransport): the registered
// producer and how it is paced, the write-buffer marks, and the checks register_producer
// and set_write_buffer_limits make. Each transport keeps only what differs: when its
// buffer is measured, and from where a producer is paused, resumed or asked for more.

#include <cstddef>
#include <stdexcept>
#include <string>

#include "framework/transport.hpp"

namespace torsion::detail {

struct ProducerSlot {
  Producer* producer = nullptr;
  bool streaming = false;
  bool paused = false;       // a streaming producer, paused above the high mark
  bool pull_wanted = false;  // a pull producer was asked and has not written since
  WriteBufferLimits limits;

  // register_producer: throws std::logic_error if a producer is registered already. On a
  // closed connection `p` hears stop_producing and false is returned; else it is
  // registered, not paused, and true is returned.
  bool attach(Producer& p, bool is_streaming, bool closed) {
    if (producer) throw std::logic_error("register_producer: a producer is already registered");
    if (closed) {
      p.stop_producing();
      return false;
    }
    producer = &p;
    streaming = is_streaming;
    paused = false;
    pull_wanted = false;
    return true;
  }

  // unregister_producer.
  void detach() noexcept {
    producer = nullptr;
    paused = false;
    pull_wanted = false;
  }

  // set_write_buffer_limits: throws std::invalid_argument if low exceeds high.
  void set_limits(std::size_t high, std::size_t low) {
    if (low > high)
      throw std::invalid_argument("set_write_buffer_limits: low (" + std::to_string(low) +
                                  ") must not exceed high (" + std::to_string(high) + ")");
    limits = {high, low};
  }

  // A streaming producer that runs while `buffered` is above the high mark.
  bool should_pause(std::size_t buffered) const noexcept {
    return producer && streaming && !paused && buffered > limits.high;
  }
  // A streaming producer paused by the marks while `buffered` is down to the low mark.
  bool should_resume(std::size_t buffered) const noexcept {
    return producer && streaming && paused && buffered <= limits.low;
  }
};

}  // namespace torsion::detail
