// The TLS layer (transports/detail/tls_layer.hpp): OpenSSL through two memory BIOs,
// driven by the stream engine below.

#include "transports/detail/tls_layer.hpp"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <asio/post.hpp>
#include <asio/ssl/error.hpp>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>

#include "framework/detail/protocol_scope.hpp"
#include "framework/detail/turn.hpp"
#include "transports/detail/stream_engine.hpp"
#include "transports/detail/tls_context.hpp"

namespace torsion::detail {

namespace {

// The first OpenSSL error of this thread's queue (which is then cleared), as a cause.
std::error_code take_ssl_error() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return {};
  return std::error_code(static_cast<int>(code), asio::error::get_ssl_category());
}

}  // namespace

TlsLayer::TlsLayer(std::unique_ptr<Protocol> inner)
    : inner_(std::move(inner)), alive_(std::make_shared<TlsLayer*>(this)) {}

TlsLayer::TlsLayer(SSL* ssl, bool server, Settings settings, HandshakeHook on_handshake)
    : ssl_(ssl),
      settings_(std::move(settings)),
      on_handshake_(std::move(on_handshake)),
      alive_(std::make_shared<TlsLayer*>(this)),
      phase_(Phase::handshaking),
      server_(server) {
  if (ssl_) attach_ssl();
}

// The BIO between OpenSSL and the engine (both ways), and the side `ssl_` plays. Without
// a BIO (out of memory) the handshake fails at its first step.
void TlsLayer::attach_ssl() {
  BIO_METHOD* method = bio_method();
  BIO* bio = method ? BIO_new(method) : nullptr;
  if (bio) BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);  // one reference for both directions
  if (server_)
    SSL_set_accept_state(ssl_);
  else
    SSL_set_connect_state(ssl_);
}

TlsLayer::~TlsLayer() {
  timer_.cancel();
  if (ssl_) SSL_free(ssl_);
}

void TlsLayer::begin(SSL* ssl, bool server, double close_timeout,
                     std::shared_ptr<const void> config) {
  if (ssl_) {
    SSL_free(ssl);
    throw std::logic_error("start_tls: TLS was already started on this connection");
  }
  if (!has_transport()) {
    SSL_free(ssl);
    throw std::logic_error("start_tls: the connection is not up");
  }
  ssl_ = ssl;
  server_ = server;
  settings_.config = std::move(config);
  if (auto* engine = dynamic_cast<OnReactor*>(&below())) {
    settings_.reactor = &engine->home_reactor;
    settings_.wait_close_notify = true;
    settings_.close_timeout = close_timeout;
  }
  attach_ssl();
  phase_ = Phase::handshaking;
  if (paused_) below().resume_producing();  // the handshake needs reading; see pause_producing
  if (!server_) step();  // a client sends its ClientHello now
}

void TlsLayer::start(std::unique_ptr<Protocol> inner, LostHook on_lost) {
  inner_ = std::move(inner);
  on_lost_ = std::move(on_lost);
  inner_->make_connection(*this);
}

std::optional<TlsInfo> TlsLayer::info() const {
  if (!ssl_ || phase_ != Phase::open) return std::nullopt;
  return info_of(ssl_);
}

// --- events from the engine ----------------------------------------------------------

void TlsLayer::connection_made() {
  if (phase_ == Phase::plain) {
    inner_->make_connection(*this);
    return;
  }
  if (settings_.reactor && settings_.handshake_timeout > 0) {
    timer_ = settings_.reactor->call_later(settings_.handshake_timeout, [this] {
      if (phase_ == Phase::handshaking)
        handshake_failed(Reason(error::timed_out, {}, "TLS handshake"));
    });
  }
  // A client sends its ClientHello now; a server waits for it without touching OpenSSL,
  // so a connection that never says anything costs no handshake state.
  if (!server_) step();
}

void TlsLayer::data_received(std::string_view data) {
  if (phase_ == Phase::plain) {
    const ProtocolScope scope(inner_.get());  // binds what it hands out (protocol_scope.hpp)
    inner_->data_received(data);
    return;
  }
  if (stopped()) return;
  if (!ssl_) {  // a server's first bytes: now the handshake needs OpenSSL
    ssl_ = SSL_new(settings_.ssl_ctx);
    if (!ssl_) {
      handshake_failed(Reason(error::tls_failed, take_ssl_error(), "SSL_new (out of memory)"));
      return;
    }
    attach_ssl();
  }
  in_ = data;  // read by OpenSSL through the BIO, in step()
  delivering_ = true;
  try {
    step();
  } catch (...) {  // the engine aborts: nothing corked may leave, nothing unread matters
    delivering_ = false;
    in_ = {};
    corked_.clear();
    throw;
  }
  delivering_ = false;
  keep_unread();
  uncork();
}

// The end of data_received (or of a delivery from the loop): what OpenSSL left unread of
// the engine's bytes is copied, as the view dies with the call, and in_rest_ gives its
// memory back once it has all been read. A failed connection reads no more.
void TlsLayer::keep_unread() {
  if (stopped()) {
    in_rest_ = std::string();
  } else if (in_rest_read_ == in_rest_.size()) {
    in_rest_ = std::string(in_);  // empty (no memory) when OpenSSL read it all
  } else {
    in_rest_.erase(0, in_rest_read_);
    in_rest_.append(in_);
  }
  in_rest_read_ = 0;
  in_ = {};
}

// --- the BIO -------------------------------------------------------------------------

BIO_METHOD* TlsLayer::bio_method() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m =
        BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "torsion TLS layer");
    if (m) {
      BIO_meth_set_read(m, &TlsLayer::bio_read);
      BIO_meth_set_write(m, &TlsLayer::bio_write);
      BIO_meth_set_ctrl(m, &TlsLayer::bio_ctrl);
      BIO_meth_set_create(m, [](BIO* bio) {
        BIO_set_init(bio, 1);
        return 1;
      });
    }
    return m;
  }();
  return method;
}

// What is left of in_rest_, then of the engine's view; with nothing left, OpenSSL is told
// to retry (SSL_ERROR_WANT_READ), as a memory BIO would.
int TlsLayer::bio_read(BIO* bio, char* out, int size) {
  BIO_clear_retry_flags(bio);
  auto* self = static_cast<TlsLayer*>(BIO_get_data(bio));
  if (!self || size <= 0) return 0;
  const auto want = static_cast<std::size_t>(size);
  std::size_t n = std::min(want, self->in_rest_.size() - self->in_rest_read_);
  if (n > 0) {
    std::memcpy(out, self->in_rest_.data() + self->in_rest_read_, n);
    self->in_rest_read_ += n;
  }
  const std::size_t m = std::min(want - n, self->in_.size());
  if (m > 0) {
    std::memcpy(out + n, self->in_.data(), m);
    self->in_.remove_prefix(m);
    n += m;
  }
  if (n == 0) {
    BIO_set_retry_read(bio);
    return -1;
  }
  return static_cast<int>(n);
}

// Called from OpenSSL's C code: out of memory fails the write instead of throwing.
int TlsLayer::bio_write(BIO* bio, const char* data, int size) {
  BIO_clear_retry_flags(bio);
  auto* self = static_cast<TlsLayer*>(BIO_get_data(bio));
  if (!self || size <= 0) return 0;
  try {
    self->out_.append(data, static_cast<std::size_t>(size));
  } catch (...) {
    return -1;
  }
  return size;
}

long TlsLayer::bio_ctrl(BIO* bio, int cmd, long num, void* ptr) {
  (void)num, (void)ptr;
  const auto* self = static_cast<const TlsLayer*>(BIO_get_data(bio));
  if (!self) return 0;
  switch (cmd) {
    case BIO_CTRL_FLUSH:  // flush() hands out_ below after every call into OpenSSL
      return 1;
    case BIO_CTRL_PENDING:
      return static_cast<long>(self->in_rest_.size() - self->in_rest_read_ + self->in_.size());
    case BIO_CTRL_WPENDING:
      return static_cast<long>(self->out_.size());
    default:  // no EOF (the engine tells the layer), no kTLS, no duplication
      return 0;
  }
}

bool TlsLayer::eof_received() {
  if (phase_ == Phase::plain) {
    const ProtocolScope scope(inner_.get());
    return inner_->eof_received();
  }
  if (phase_ == Phase::handshaking) {
    handshake_failed(
        Reason(error::tls_failed, {}, "the peer closed the connection during the handshake"));
    return false;
  }
  if (closing_ || stopped()) return false;  // waiting for close_notify: a TCP end will do
  if (!peer_closed_) {
    // The peer closed TCP without close_notify: a truncation, not a clean end.
    failure_ = Reason(error::connection_lost, {}, "the peer closed without TLS close_notify");
    return false;
  }
  // The inner protocol heard the end at the peer's close_notify already, and kept the
  // connection open to go on writing.
  return true;
}

void TlsLayer::connection_lost(const Reason& reason) {
  timer_.cancel();
  alive_.reset();
  if (auto hook = std::move(on_handshake_)) {
    // The connection ended during the handshake (aborted, reset, released by a timeout).
    const Reason why = failure_ ? *failure_ : reason;
    hook(*this, &why);
  }
  if (inner_) inner_->end_connection(failure_ ? *failure_ : reason);
  if (auto lost = std::move(on_lost_)) lost(failure_ ? *failure_ : reason);
}

// --- the engine's bytes through OpenSSL ------------------------------------------------

void TlsLayer::step() {
  if (phase_ == Phase::handshaking) {
    ERR_clear_error();
    const int r = SSL_do_handshake(ssl_);
    if (r != 1) {
      const int err = SSL_get_error(ssl_, r);
      flush();  // the next flight, or a fatal alert
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return;
      std::string detail = "TLS handshake";
      const long verify = SSL_get_verify_result(ssl_);
      if (verify != X509_V_OK) detail = X509_verify_cert_error_string(verify);
      handshake_failed(Reason(error::tls_failed, take_ssl_error(), detail));
      return;
    }
    handshake_done();
    if (stopped() || !has_transport()) return;
  }
  if (phase_ == Phase::open) read_records();
}

void TlsLayer::handshake_done() {
  phase_ = Phase::open;
  timer_.cancel();
  flush();
  if (paused_) below().pause_producing();  // held while the handshake read on
  if (auto hook = std::move(on_handshake_)) {
    hook(*this, nullptr);  // attaches the inner protocol (connection_made), or closes
    if (!inner_ || stopped()) return;
  }
  if (!held_.empty()) {
    const std::string held = std::move(held_);
    held_.clear();
    encrypt(held);
    if (stopped()) return;
  }
  release_held_pause();
  if (closing_) {
    finish_close();
  } else if (write_shut_) {
    shut_write();
  }
}

void TlsLayer::read_records() {
  char buf[kRecord];
  for (;;) {
    // Paused: the records still to read stay in in_rest_, delivered after
    // resume_producing (which needs the loop to post to: start_tls, without one, delivers
    // on).
    if (paused_ && settings_.reactor && !closing_) return;
    ERR_clear_error();
    const int n = SSL_read(ssl_, buf, sizeof buf);
    if (n > 0) {
      if (closing_) continue;  // waiting for close_notify: input is no longer wanted
      const ProtocolScope scope(inner_.get());  // binds what it hands out (protocol_scope.hpp)
      inner_->data_received(std::string_view(buf, static_cast<std::size_t>(n)));
      if (stopped() || !has_transport()) return;
      continue;
    }
    const int err = SSL_get_error(ssl_, n);
    flush();  // a key update, a session ticket's answer
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return;
    if (err == SSL_ERROR_ZERO_RETURN) {  // the peer's close_notify
      if (peer_closed_) return;
      peer_closed_ = true;
      if (closing_) {  // the wait for it is over
        below().lose_connection();
        return;
      }
      const ProtocolScope scope(inner_.get());  // binds what it hands out (protocol_scope.hpp)
      const bool keep_open = inner_->eof_received();
      // Once our side is shut too, both directions are done.
      if (!closing_ && !stopped() && (!keep_open || write_shut_)) lose_connection();
      return;
    }
    fail(Reason(error::tls_failed, take_ssl_error(), "reading a TLS record"));
    return;
  }
}

void TlsLayer::handshake_failed(Reason reason) {
  if (stopped()) return;
  phase_ = Phase::failed;
  timer_.cancel();
  corked_.clear();
  held_.clear();
  failure_ = reason;
  if (auto hook = std::move(on_handshake_)) hook(*this, &reason);
  // The alert, if any, was flushed: it leaves before the close.
  if (has_transport()) below().lose_connection();
}

void TlsLayer::fail(Reason reason) {
  if (stopped()) return;
  phase_ = Phase::failed;
  corked_.clear();
  failure_ = std::move(reason);
  below().abort_connection();
}

// --- writing -------------------------------------------------------------------------

void TlsLayer::write_bytes(std::string_view data) {
  if (closing_ || write_shut_ || stopped() || data.empty()) return;
  if (phase_ == Phase::plain) {
    below().write(data);
    return;
  }
  if (phase_ != Phase::open) {
    held_.append(data);
    check_held_high_water();
    return;
  }
  if (corked_.empty()) {
    if (!delivering_) {
      if (current_turn() == 0) {  // outside the loop's turns nothing would end a batch
        encrypt(data);
        return;
      }
      at_turn_end();  // turn_ended() encrypts the batch
    }
    cork_room_ = room_below_high_mark();  // what may be corked before buffer_size() > high
  }
  corked_.append(data);
  if (corked_.size() > cork_room_) {
    // Past the high mark: everything goes below now, where the write that took the
    // buffer above the mark pauses a streaming producer, as the promise says.
    uncork();
    return;
  }
  if (corked_.size() < kRecord) return;
  // Whole records go now; corked_ keeps the rest before encrypting, so that a write made
  // from inside the write below (a producer's pause_producing) comes after it.
  std::string records = std::move(corked_);
  const std::size_t whole = records.size() / kRecord * kRecord;
  corked_.assign(records, whole);
  records.resize(whole);
  encrypt(records);
  cork_room_ = room_below_high_mark();
}

// How many bytes buffer_size() may grow by before it passes the high mark. Computed once
// per batch (and after each record handed below), not per write: the engine's queue only
// drains from the loop, so a stale figure can only uncork a batch early.
std::size_t TlsLayer::room_below_high_mark() const {
  const std::size_t high = below().write_buffer_limits().high;
  const std::size_t used = below().buffer_size() + held_.size();
  return high > used ? high - used : 0;
}

void TlsLayer::turn_ended() noexcept {
  try {
    uncork();
  } catch (...) {  // out of memory in OpenSSL or below: this connection only
    corked_.clear();
    if (has_transport()) below().abort_connection();
  }
}

void TlsLayer::uncork() {
  if (corked_.empty() || stopped()) return;
  const std::string data = std::move(corked_);
  corked_.clear();
  encrypt(data);
}

void TlsLayer::encrypt(std::string_view data) {
  // One allocation for the batch's records (each adds a header, a tag, maybe padding):
  // grown record by record, a large batch would be copied at each doubling and, past
  // malloc's mmap threshold, have its pages faulted in afresh at every write.
  constexpr std::size_t kRecordOverhead = 64;
  out_.reserve(out_.size() + data.size() + (data.size() / kRecord + 1) * kRecordOverhead);
  while (!data.empty()) {
    ERR_clear_error();
    const int n = SSL_write(ssl_, data.data(),
                            static_cast<int>(std::min<std::size_t>(data.size(), 1 << 30)));
    if (n <= 0) {
      fail(Reason(error::tls_failed, take_ssl_error(), "SSL_write failed"));
      return;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  flush();
}

// Hands whatever OpenSSL produced for the peer to the engine, in one write, and keeps no
// memory for it. out_ is emptied first: a write made from inside the write below (a
// producer's pause_producing) encrypts and flushes after it. Up to one record goes as a
// view, which the engine sends at once or copies, as for any write of that size; more is
// moved in, without a copy.
void TlsLayer::flush() {
  if (out_.empty() || !has_transport()) return;
  std::string out = std::exchange(out_, std::string());
  if (out.size() <= kRecord + 1024)
    below().write(std::string_view(out));
  else
    below().write(std::move(out));
}

// --- closing -------------------------------------------------------------------------

void TlsLayer::lose_connection() {
  if (phase_ == Phase::plain) {
    if (!closing_) below().lose_connection();
    closing_ = true;
    return;
  }
  if (closing_ || stopped()) return;
  closing_ = true;
  if (phase_ == Phase::open) finish_close();  // else once the handshake ends
}

// --- writing flow control -----------------------------------------------------------------

void TlsLayer::register_producer(Producer& p, bool streaming) {
  if (producer_.inner)
    throw std::logic_error("register_producer: a producer is already registered");
  producer_ = ProducerMembrane{};
  producer_.inner = &p;
  producer_.held = &held_;
  producer_.streaming = streaming;
  below().register_producer(producer_, streaming);
  check_held_high_water();
}

void TlsLayer::unregister_producer() {
  below().unregister_producer();
  producer_ = ProducerMembrane{};
}

// Writes held before the handshake is done count against the high mark like the
// engine's queue: a streaming producer is paused from inside the write that passes it.
void TlsLayer::check_held_high_water() {
  if (!producer_.inner || !producer_.streaming || producer_.paused_held ||
      producer_.paused_below || buffer_size() <= below().write_buffer_limits().high)
    return;
  producer_.paused_held = true;
  producer_.inner->pause_producing();
}

// The held bytes have gone below: the engine takes over a pause the layer made. If its
// queue is above the low mark and it has not paused the producer itself, it is made to
// (the water marks are set again, which is where the engine checks them; the membrane
// keeps the producer from hearing a second pause), so that it resumes the producer at
// the low mark as it always does; at or below the low mark the producer resumes now.
void TlsLayer::release_held_pause() {
  if (!producer_.paused_held) return;
  const WriteBufferLimits limits = below().write_buffer_limits();
  if (!producer_.paused_below && below().buffer_size() > limits.low) {
    below().set_write_buffer_limits(limits.low, limits.low);
    below().set_write_buffer_limits(limits.high, limits.low);
  }
  producer_.paused_held = false;
  if (!producer_.paused_below) producer_.inner->resume_producing();
}

void TlsLayer::abort_connection() {
  corked_.clear();
  held_.clear();
  aborted_ = true;
  below().abort_connection();
}

void TlsLayer::lose_write_connection() {
  if (phase_ == Phase::plain) {
    below().lose_write_connection();
    return;
  }
  if (closing_ || write_shut_ || stopped()) return;
  write_shut_ = true;
  if (peer_closed_) {  // the peer had finished first: both directions are done
    lose_connection();
    return;
  }
  if (phase_ == Phase::open) shut_write();  // else once the handshake ends
}

bool TlsLayer::connected() const { return !closing_ && !stopped() && below().connected(); }

// Our close_notify, after what was written; OpenSSL goes on reading after it.
void TlsLayer::shut_write() {
  uncork();
  if (notify_sent_ || stopped()) return;
  notify_sent_ = true;
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
  flush();
}

void TlsLayer::finish_close() {
  shut_write();
  if (stopped()) return;
  if (peer_closed_ || !settings_.wait_close_notify || !settings_.reactor) {
    below().lose_connection();
    return;
  }
  // Wait for the peer's close_notify (read_records closes then), reading even if the
  // inner paused: its input is dropped now.
  if (paused_) {
    paused_ = false;
    below().resume_producing();
  }
  if (settings_.close_timeout > 0) {
    timer_ = settings_.reactor->call_later(settings_.close_timeout, [this] {
      if (has_transport()) below().lose_connection();  // a silent peer: stop waiting
    });
  }
}

// --- reading flow control ----------------------------------------------------------------

// During the handshake the engine reads on (the handshake would stall otherwise); the
// records wait in in_rest_ and the engine is paused once the handshake is done.
void TlsLayer::pause_producing() {
  paused_ = true;
  if (phase_ != Phase::handshaking) below().pause_producing();
}

void TlsLayer::resume_producing() {
  if (!paused_) {
    below().resume_producing();
    return;
  }
  paused_ = false;
  below().resume_producing();
  if (phase_ == Phase::open && settings_.reactor) post_drain();
}

// After resume_producing: the records read while paused are delivered from the loop
// (never from inside the call), as the engine delivers what it held.
void TlsLayer::post_drain() {
  if (drain_posted_) return;
  drain_posted_ = true;
  asio::post(settings_.reactor->context(), [alive = std::weak_ptr<TlsLayer*>(alive_)] {
    auto self = alive.lock();
    if (!self) return;
    TlsLayer& layer = **self;
    layer.drain_posted_ = false;
    if (layer.paused_ || layer.stopped() || !layer.has_transport()) return;
    const TurnScope turn;
    layer.delivering_ = true;
    try {
      layer.read_records();
    } catch (...) {
      layer.delivering_ = false;
      layer.corked_.clear();
      log(LogLevel::error, layer.settings_.log,
          "exception in data_received; aborting the connection");
      layer.fail(Reason(error::callback_threw, {}, "data_received", std::current_exception()));
      return;
    }
    layer.delivering_ = false;
    layer.keep_unread();
    layer.uncork();
  });
}

}  // namespace torsion::detail
