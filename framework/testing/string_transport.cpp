#include "framework/testing/string_transport.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

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
  if (Producer* p = std::exchange(flow_.producer, nullptr)) p->stop_producing();
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
  if (reading_paused_ || read_held_) {
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
  if (reading_paused_ || read_held_) {
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
  if (!connected() || write_closed_) return;  // dropped, as on the real transports
  if (!data.empty()) flow_.pull_wanted = false;
  if (buffering_) {
    buffered_.append(data);
    check_marks();
  } else {
    sent_.append(data);
  }
}

void StringTransport::drain(std::size_t n) {
  n = std::min(n, buffered_.size());
  sent_.append(buffered_, 0, n);
  buffered_.erase(0, n);
  check_marks();
  ask_pull_producer();
}

void StringTransport::ask_pull_producer() {
  if (!flow_.producer || flow_.streaming || !buffered_.empty() || !connected() ||
      write_closed_ || flow_.pull_wanted)
    return;
  flow_.pull_wanted = true;
  flow_.producer->resume_producing();
}

void StringTransport::unregister_producer() { flow_.detach(); }

void StringTransport::set_pause_reading_when_full(bool enabled) {
  hold_reads_ = enabled;
  if (!enabled) read_held_ = false;
}

void StringTransport::check_marks() {
  if (!flow_.producer) {
    if (hold_reads_ && delivering_ && buffered_.size() > flow_.limits.high) read_held_ = true;
    if (read_held_ && buffered_.size() <= flow_.limits.low) read_held_ = false;
  }
  if (flow_.should_pause(buffered_.size())) {
    flow_.paused = true;
    flow_.producer->pause_producing();
  } else if (flow_.should_resume(buffered_.size()) && connected() && !write_closed_) {
    // (closing or write-shut: nobody is resumed any more)
    flow_.paused = false;
    flow_.producer->resume_producing();
  }
}

void StringTransport::lose_connection() { lose_called_ = true; }

void StringTransport::abort_connection() {
  abort_called_ = true;
  buffered_.clear();
}

void StringTransport::register_producer(Producer& producer, bool streaming) {
  if (!flow_.attach(producer, streaming, /*closed=*/lost_)) return;  // gone, as on the real transports
  read_held_ = false;  // the producer is paced instead
  if (streaming)
    check_marks();
  else
    ask_pull_producer();
}

void StringTransport::set_write_buffer_limits(std::size_t high, std::size_t low) {
  flow_.set_limits(high, low);
  check_marks();
}

}  // namespace torsion::testing
