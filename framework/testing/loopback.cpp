#include "framework/testing/loopback.hpp"

#include <cerrno>
#include <exception>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "framework/detail/protocol_scope.hpp"
#include "framework/log.hpp"
#include "framework/testing/detail/pump.hpp"

namespace torsion::testing {
namespace {

// What a side hears when its peer's kernel has answered with RST: Linux reports EPIPE if
// the peer's FIN had arrived before (CLOSE_WAIT), ECONNRESET otherwise.
Reason reset_by_peer(bool fin_arrived) {
  return Reason::from_os_error(
      std::error_code(fin_arrived ? EPIPE : ECONNRESET, std::system_category()));
}

Protocol& require(const std::unique_ptr<Protocol>& p, const char* which) {
  if (!p) throw std::invalid_argument(std::string("Loopback: the ") + which + " protocol is null");
  return *p;
}

}  // namespace

// --- LoopbackTransport -------------------------------------------------------------

LoopbackTransport::LoopbackTransport(Loopback& loop, Protocol& protocol, Address host, Address peer)
    : loop_(loop), protocol_(protocol), host_(std::move(host)), peer_(std::move(peer)) {}

LoopbackTransport::~LoopbackTransport() = default;

// Runs a protocol or producer callback; a std::exception aborts this connection only,
// as the real transports do. Returns false if it threw.
template <class F>
bool LoopbackTransport::guarded(const char* what, F&& fn) {
  try {
    fn();
    return true;
  } catch (const std::exception& e) {
    log(LogLevel::error, std::string("exception in ") + what + " (peer " + peer_.to_string() +
                             ", host " + host_.to_string() + "): " + e.what() +
                             "; aborting the connection");
    close_hard(Reason(error::callback_threw, {}, std::string(what) + ": " + e.what(),
                      std::current_exception()));
    return false;
  }
}

void LoopbackTransport::write_bytes(std::string_view data) {
  if (state_ != State::open || write_shut_requested_ || data.empty()) return;
  flow_.wrote();  // a pull producer that wrote may be asked again
  out_.append(data);
  flow_.after_write(*this);
}

void LoopbackTransport::lose_connection() {
  if (state_ != State::open) return;
  state_ = State::closing;  // reading stops now; the pump closes once out_ has moved
}

void LoopbackTransport::abort_connection() { close_hard(Reason(error::connection_aborted)); }

void LoopbackTransport::lose_write_connection() {
  if (state_ != State::open || write_shut_requested_) return;
  write_shut_requested_ = true;
  // If the peer's EOF has been read already, both directions are now shut: close.
  if (loop_.wire_to(*this).eof_delivered) state_ = State::closing;
}

void LoopbackTransport::register_producer(Producer& producer, bool streaming) {
  flow_.attach(*this, producer, streaming, /*closed=*/state_ == State::closed);
}

void LoopbackTransport::unregister_producer() {
  flow_.detach();
}

void LoopbackTransport::set_write_buffer_limits(std::size_t high, std::size_t low) {
  flow_.set_limits(*this, high, low);
}

void LoopbackTransport::set_pause_reading_when_full(bool enabled) {
  flow_.set_hold_reads(*this, enabled);
}

void LoopbackTransport::close_hard(Reason reason) {
  if (state_ == State::closed) return;
  state_ = State::closed;
  reason_ = std::move(reason);
  out_.clear();
  // A reset replaces whatever was in flight to the peer, and nobody reads what the peer
  // sent us any more.
  Loopback::Wire& out = loop_.wire_from(*this);
  out.bytes.clear();
  if (!out.eof_delivered) out.eof = false;
  out.reset = true;
  loop_.wire_to(*this).bytes.clear();
}

// --- Loopback ------------------------------------------------------------------------

Loopback::Loopback(Protocol& client, Protocol& server, LoopbackOptions options)
    : client_(client), server_(server), options_(std::move(options)) {
  if (options_.wire_capacity == 0)
    throw std::invalid_argument("Loopback: wire_capacity must be at least 1");
  if (options_.seed) rng_state_ = *options_.seed;
  server_end_.reset(
      new LoopbackTransport(*this, server_, options_.server_address, options_.client_address));
  client_end_.reset(
      new LoopbackTransport(*this, client_, options_.client_address, options_.server_address));
  // As the real transports: connection_made may close or abort; that is handled by the
  // pump. The server hears of the connection first.
  for (LoopbackTransport* end : {server_end_.get(), client_end_.get()}) {
    end->guarded("connection_made", [&] { end->protocol_.make_connection(*end); });
    end->made_ = true;
  }
}

Loopback::Loopback(std::unique_ptr<Protocol> client, std::unique_ptr<Protocol> server,
                   LoopbackOptions options)
    : Loopback(require(client, "client"), require(server, "server"), std::move(options)) {
  owned_client_ = std::move(client);
  owned_server_ = std::move(server);
}

Loopback::~Loopback() = default;

Loopback::Wire& Loopback::wire_from(const LoopbackTransport& end) noexcept {
  return &end == client_end_.get() ? to_server_ : to_client_;
}

Loopback::Wire& Loopback::wire_to(const LoopbackTransport& end) noexcept {
  return &end == client_end_.get() ? to_client_ : to_server_;
}

std::size_t Loopback::next_chunk(std::size_t available) {
  std::size_t n = options_.chunk_size == 0 ? available : options_.chunk_size;
  if (options_.seed) {
    // splitmix64: fully specified, so a seed gives the same splits everywhere.
    std::uint64_t z = (rng_state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const std::size_t max = options_.chunk_size == 0 ? 64 : options_.chunk_size;
    n = 1 + static_cast<std::size_t>(z % max);
  }
  return n < available ? n : available;
}

// Moves `from`'s buffer onto the wire and applies its close requests. `back` is the wire
// in the other direction.
bool Loopback::flush(LoopbackTransport& from, LoopbackTransport& to, Wire& wire, Wire& back) {
  using State = LoopbackTransport::State;
  if (from.state_ == State::closed) return false;
  if (!from.out_.empty() && back.reset) {  // the peer reset the connection: writing fails
    from.close_hard(reset_by_peer(back.eof));
    return true;
  }
  bool moved = false;
  if (!from.out_.empty()) {
    if (to.state_ == State::closed) {
      // The peer's socket is gone: the bytes vanish (this write succeeded) and its kernel
      // answers with a reset, which `from` hears when it next reads or writes.
      from.out_.clear();
      back.reset = true;
      moved = true;
    } else {
      const std::size_t cap = options_.wire_capacity;
      const std::size_t room = cap > wire.bytes.size() ? cap - wire.bytes.size() : 0;
      const std::size_t n = room < from.out_.size() ? room : from.out_.size();
      if (n > 0) {
        wire.bytes.append(from.out_.view().substr(0, n));
        from.out_.consume(n);
        moved = true;
      }
    }
    if (moved) from.flow_.check_low(from);
    if (from.state_ == State::closed) return true;  // a producer callback threw
  }
  if (!from.out_.empty()) return moved;
  if (from.state_ == State::closing) {
    from.state_ = State::closed;
    from.reason_ = Reason();
    wire.eof = true;
    if (!back.bytes.empty()) {  // closing with unread input: TCP resets the peer
      back.bytes.clear();
      wire.reset = true;
    }
    return true;
  }
  if (from.write_shut_requested_ && !wire.eof) {
    wire.eof = true;
    return true;
  }
  return moved;
}

// Delivers one chunk, the EOF or the reset waiting on `wire` to `to`, if it is reading.
bool Loopback::deliver(LoopbackTransport& to, Wire& wire) {
  using State = LoopbackTransport::State;
  if (to.state_ != State::open || to.read_paused_ || to.flow_.read_held()) return false;
  const torsion::detail::ProtocolScope scope(&to.protocol_);  // as the real transports do
  if (!wire.bytes.empty()) {
    const std::size_t n = next_chunk(wire.bytes.size());
    chunk_.assign(wire.bytes.view().substr(0, n));
    wire.bytes.consume(n);
    to.delivering_ = true;
    to.guarded("data_received", [&] { to.protocol_.data_received(chunk_); });
    to.delivering_ = false;
    return true;
  }
  if (wire.eof && !wire.eof_delivered) {
    // The protocol hears the EOF in every case; its answer matters only while its write
    // side is open. If that was shut (or is being shut), both directions are done.
    wire.eof_delivered = true;
    bool keep_open = false;
    to.guarded("eof_received", [&] { keep_open = to.protocol_.eof_received(); });
    if (to.state_ == State::open && (to.write_shut_requested_ || !keep_open)) to.lose_connection();
    return true;
  }
  // After an EOF nothing more is read (the real transports stop reading), so a reset
  // behind it is noticed only by the next write (flush).
  if (wire.reset && !wire.eof) {
    to.close_hard(reset_by_peer(false));
    return true;
  }
  return false;
}

// A pull producer is asked for more when its transport's buffer is empty and it has
// written since it was last asked (one with nothing to say is not spun on).
bool Loopback::pull(LoopbackTransport& end) {
  return end.flow_.ask_pull(end);
}

// Delivers connection_lost to a side that has closed.
bool Loopback::finish(LoopbackTransport& end) {
  if (end.state_ != LoopbackTransport::State::closed || end.finished_ || !end.made_) return false;
  end.finished_ = true;
  if (Producer* p = end.flow_.take()) {
    try {
      p->stop_producing();
    } catch (const std::exception& e) {
      log(LogLevel::error, std::string("exception in stop_producing: ") + e.what());
    }
  }
  try {
    end.protocol_.end_connection(*end.reason_);
  } catch (const std::exception& e) {
    log(LogLevel::error, std::string("exception in connection_lost (peer ") +
                             end.peer_.to_string() + "): " + e.what());
  }
  return true;
}

bool Loopback::step() {
  if (stepping_) throw std::logic_error("Loopback::step/pump called from inside a callback");
  struct Guard {
    bool& flag;
    ~Guard() { flag = false; }
  } guard{stepping_ = true};
  LoopbackTransport& c = *client_end_;
  LoopbackTransport& s = *server_end_;
  bool moved = flush(c, s, to_server_, to_client_);
  moved = flush(s, c, to_client_, to_server_) || moved;
  moved = deliver(s, to_server_) || moved;
  moved = deliver(c, to_client_) || moved;
  moved = pull(c) || moved;
  moved = pull(s) || moved;
  moved = finish(c) || moved;
  moved = finish(s) || moved;
  ++steps_;
  return moved;
}

bool Loopback::pump() {
  return detail::pump_steps([this] { return step(); }, options_.max_steps, "Loopback::pump",
                            "protocols that answer each other forever?");
}

}  // namespace torsion::testing
