#include "framework/testing/string_transport.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "framework/detail/protocol_scope.hpp"

namespace torsion::testing {

StringTransport::StringTransport()
    : peer_(Address::ip("127.0.0.1", 54321)), host_(Address::ip("127.0.0.1", 8000)) {}

void StringTransport::connect(Protocol& protocol) {
  if (protocol_) throw std::logic_error("StringTransport::connect: already connected");
  protocol_ = &protocol;
  connected_ = true;
  protocol.make_connection(*this);
}

void StringTransport::disconnect(const Reason& reason) {
  if (lost_ || !protocol_) return;
  lost_ = true;
  connected_ = false;
  if (Producer* p = flow_.take()) p->stop_producing();
  protocol_->end_connection(reason);
}

void StringTransport::receive(std::string_view data) {
  if (!protocol_) throw std::logic_error("StringTransport::receive: connect() a protocol first");
  deliver(data, false);
}

void StringTransport::receive_eof() {
  if (!protocol_)
    throw std::logic_error("StringTransport::receive_eof: connect() a protocol first");
  deliver({}, true);
}

void StringTransport::deliver(std::string_view data, bool eof) {
  // Reading stops at lose_connection/abort_connection, and nothing follows an EOF.
  if (lost_ || !connected() || eof_seen_) return;
  const torsion::detail::ProtocolScope scope(protocol_);  // as the real transports do
  if (reading_paused_ || flow_.read_held()) {
    held_.append(data);
    eof_held_ = eof_held_ || eof;
    return;
  }
  delivering_ = true;
  try {
    if (!held_.empty()) {
      std::string all = std::exchange(held_, std::string());
      all.append(data);
      protocol_->data_received(all);
    } else if (!data.empty()) {
      protocol_->data_received(data);
    }
  } catch (...) {
    delivering_ = false;
    throw;
  }
  delivering_ = false;
  eof = eof || std::exchange(eof_held_, false);
  if (!eof || !connected()) return;  // the protocol closed us in data_received
  // It paused in data_received (or its answer filled the buffer): the EOF waits.
  if (reading_paused_ || flow_.read_held()) {
    eof_held_ = true;
    return;
  }
  eof_seen_ = true;
  // The protocol hears the EOF in every case; its answer matters only while its write
  // side is open. If that was shut, both directions are done.
  const bool keep_open = protocol_->eof_received();
  if (connected() && (write_closed_ || !keep_open)) lose_connection();
}

std::string StringTransport::take() { return std::exchange(sent_, std::string()); }

void StringTransport::write_bytes(std::string_view data) {
  if (!connected() || write_closed_ || data.empty()) return;  // dropped, as on the real transports
  flow_.wrote();
  if (buffering_) {
    buffered_.append(data);
    flow_.after_write(*this);
  } else {
    sent_.append(data);
  }
}

void StringTransport::drain(std::size_t n) {
  n = std::min(n, buffered_.size());
  sent_.append(buffered_, 0, n);
  buffered_.erase(0, n);
  flow_.check_low(*this);
}

void StringTransport::unregister_producer() { flow_.detach(); }

void StringTransport::set_pause_reading_when_full(bool enabled) {
  flow_.set_hold_reads(*this, enabled);
}

void StringTransport::lose_connection() { lose_called_ = true; }

void StringTransport::abort_connection() {
  abort_called_ = true;
  buffered_.clear();
}

void StringTransport::register_producer(Producer& producer, bool streaming) {
  flow_.attach(*this, producer, streaming, /*closed=*/lost_);  // gone: stop_producing
}

void StringTransport::set_write_buffer_limits(std::size_t high, std::size_t low) {
  flow_.set_limits(*this, high, low);
}

}  // namespace torsion::testing
