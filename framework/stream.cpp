#include "framework/stream.hpp"

#include "framework/reactor.hpp"

#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

namespace torsion {
namespace detail {

// Shared by the Stream (the user's handle) and the StreamProtocol (owned by the
// transport). `transport` is set between connection_made and connection_lost.
//
//   buffer_: [ bytes received, not yet read ]   reading pauses at need() bytes
//   one pending read (kind_ != none) waits for wake(), which the loop runs.
class StreamCore final : public Producer, public std::enable_shared_from_this<StreamCore> {
 public:
  StreamCore(Scheduler& scheduler, StreamOptions options)
      : scheduler_(scheduler), options_(options) {}

  // --- reads -------------------------------------------------------------------------
  Deferred<std::string> read_some(std::size_t max) {
    if (max == 0) throw std::invalid_argument("Stream::read_some: max must be >= 1, got 0");
    return read_bytes(Kind::some, max);
  }

  Deferred<std::string> read_exactly(std::size_t n) { return read_bytes(Kind::exactly, n); }

  Deferred<std::string> read_to_end(std::size_t max) { return read_bytes(Kind::to_end, max); }
  std::size_t read_limit() const noexcept { return options_.read_limit; }

  Deferred<std::optional<std::string>> read_line(std::size_t max) {
    if (max == 0) throw std::invalid_argument("Stream::read_line: max must be >= 1, got 0");
    start_read(Kind::line, max);
    Deferred<std::optional<std::string>> d(
        [w = weak_from_this()](Deferred<std::optional<std::string>>&) { cancel_read(w); });
    line_ = d.state();
    post_wake();
    return d;
  }

  // --- writes ------------------------------------------------------------------------
  Deferred<void> drain() {
    if (lost_) return fail<void>(ConnectionError(*lost_));
    if (!write_paused_) return succeed();
    Deferred<void> d;
    drains_.push_back(d.state());
    return d;
  }

  // --- protocol events ---------------------------------------------------------------
  void made(Transport& t) {
    transport_ = &t;
    t.register_producer(*this, true);
  }

  void received(std::string_view data) {
    buffer_.append(data);
    update_flow();
    if (kind_ != Kind::none) post_wake();
  }

  void eof() {
    eof_ = true;
    if (kind_ != Kind::none) post_wake();
  }

  void lost(const Reason& reason) {
    transport_ = nullptr;
    eof_ = true;
    lost_ = reason;
    write_paused_ = false;
    if (kind_ != Kind::none) post_wake();
    if (!drains_.empty()) {
      auto waiting = std::move(drains_);
      drains_.clear();
      scheduler_.call_later(0, [waiting, reason]() {
        for (auto& s : waiting)
          if (!s->fired())
            s->fire(Outcome<void>::failure(std::make_exception_ptr(ConnectionError(reason))));
      });
    }
  }

  // The transport and its protocol are going away without connection_lost (the reactor
  // is being destroyed): whatever waits on this stream can never be resumed.
  void detach() {
    transport_ = nullptr;
    auto a = std::move(bytes_);
    auto b = std::move(line_);
    auto c = std::move(drains_);
    kind_ = Kind::none;
    if (a) a->drop_consumer();
    if (b) b->drop_consumer();
    for (auto& s : c) s->drop_consumer();
  }

  // --- Producer: the transport's write-side flow control ----------------------------
  void pause_producing() override { write_paused_ = true; }
  void resume_producing() override {
    if (!write_paused_) return;
    write_paused_ = false;
    if (drains_.empty()) return;
    auto waiting = std::move(drains_);
    drains_.clear();
    scheduler_.call_later(0, [waiting]() {
      for (auto& s : waiting)
        if (!s->fired()) s->fire(Outcome<void>::success());
    });
  }
  void stop_producing() override {}

  void schedule_ready(std::function<void()> fn) { scheduler_.call_later(0, std::move(fn)); }

  Transport* transport_ = nullptr;
  std::string buffer_;
  std::optional<Reason> lost_;
  bool eof_ = false;

 private:
  enum class Kind { none, some, exactly, line, to_end };

  // read_some, read_exactly and read_to_end: a read whose result is bytes.
  Deferred<std::string> read_bytes(Kind kind, std::size_t n) {
    start_read(kind, n);
    Deferred<std::string> d(
        [w = weak_from_this()](Deferred<std::string>&) { cancel_read(w); });
    bytes_ = d.state();
    post_wake();
    return d;
  }

  void start_read(Kind kind, std::size_t want) {
    if (kind_ != Kind::none)
      throw std::logic_error("Stream: a read is already pending; await it first");
    kind_ = kind;
    want_ = want;
    update_flow();
  }

  static void cancel_read(const std::weak_ptr<StreamCore>& w) {
    auto self = w.lock();
    if (!self) return;
    // The Deferred fails with CancelledError right after this; the bytes stay buffered.
    self->kind_ = Kind::none;
    self->bytes_.reset();
    self->line_.reset();
    self->update_flow();
  }

  std::size_t need() const {
    std::size_t n = options_.read_limit;
    if (kind_ == Kind::exactly) n = std::max(n, want_);
    if (kind_ == Kind::line) n = std::max(n, want_ + 2);  // room for the line and "\r\n"
    if (kind_ == Kind::to_end)  // room for max bytes and one more, to see an overrun
      n = std::max(n, want_ == std::numeric_limits<std::size_t>::max() ? want_ : want_ + 1);
    return std::max<std::size_t>(n, 1);
  }

  // Pauses reading from the transport while the buffer holds need() bytes.
  void update_flow() {
    if (!transport_) return;
    const bool full = buffer_.size() >= need();
    if (full && !read_paused_) {
      read_paused_ = true;
      transport_->pause_producing();
    } else if (!full && read_paused_) {
      read_paused_ = false;
      transport_->resume_producing();
    }
  }

  void post_wake() {
    if (wake_posted_) return;
    wake_posted_ = true;
    scheduler_.call_later(0, [w = weak_from_this()] {
      if (auto self = w.lock()) {
        self->wake_posted_ = false;
        self->wake();
      }
    });
  }

  std::string take(std::size_t n) {
    std::string out = buffer_.substr(0, n);
    buffer_.erase(0, n);
    return out;
  }

  std::exception_ptr end_error() const {
    if (lost_ && !lost_->clean()) return std::make_exception_ptr(ConnectionError(*lost_));
    return nullptr;
  }

  // Completes the pending read if it can, from the loop.
  void wake() {
    switch (kind_) {
      case Kind::none:
        return;
      case Kind::some:
        if (!buffer_.empty()) return finish_bytes(Outcome<std::string>::success(
                                  take(std::min(want_, buffer_.size()))));
        if (!eof_) return;
        if (auto e = end_error()) return finish_bytes(Outcome<std::string>::failure(e));
        return finish_bytes(Outcome<std::string>::success(std::string()));
      case Kind::exactly:
        if (buffer_.size() >= want_) return finish_bytes(Outcome<std::string>::success(take(want_)));
        if (!eof_) return;
        if (auto e = end_error(); e && buffer_.empty())
          return finish_bytes(Outcome<std::string>::failure(e));
        return finish_bytes(Outcome<std::string>::failure(
            std::make_exception_ptr(IncompleteReadError(take(buffer_.size()), want_))));
      case Kind::to_end:
        if (buffer_.size() > want_)
          return finish_bytes(
              Outcome<std::string>::failure(std::make_exception_ptr(ReadLimitError(want_))));
        if (!eof_) return;
        if (auto e = end_error()) return finish_bytes(Outcome<std::string>::failure(e));
        return finish_bytes(Outcome<std::string>::success(take(buffer_.size())));
      case Kind::line: {
        using Line = std::optional<std::string>;
        const std::size_t window = std::min(buffer_.size(), want_ + 2);
        const auto pos = std::string_view(buffer_).substr(0, window).find('\n');
        if (pos != std::string_view::npos) {
          std::size_t len = pos;
          if (len > 0 && buffer_[len - 1] == '\r') --len;
          if (len <= want_) {
            std::string line = buffer_.substr(0, len);
            buffer_.erase(0, pos + 1);
            return finish_line(Outcome<Line>::success(Line(std::move(line))));
          }
          return finish_line(Outcome<Line>::failure(
              std::make_exception_ptr(LineTooLongError(want_))));
        }
        // No "\n" yet: too long already if more than max bytes (+ a possible "\r") wait.
        if (buffer_.size() > want_ + 1 ||
            (buffer_.size() == want_ + 1 && buffer_.back() != '\r'))
          return finish_line(Outcome<Line>::failure(
              std::make_exception_ptr(LineTooLongError(want_))));
        if (!eof_) return;
        if (!buffer_.empty()) {
          std::string line = take(buffer_.size());
          if (!line.empty() && line.back() == '\r') line.pop_back();
          return finish_line(Outcome<Line>::success(Line(std::move(line))));
        }
        if (auto e = end_error()) return finish_line(Outcome<Line>::failure(e));
        return finish_line(Outcome<Line>::success(std::nullopt));
      }
    }
  }

  void finish_bytes(Outcome<std::string> outcome) {
    auto state = std::move(bytes_);
    bytes_.reset();
    kind_ = Kind::none;
    update_flow();
    if (state) state->fire(std::move(outcome));
  }

  void finish_line(Outcome<std::optional<std::string>> outcome) {
    auto state = std::move(line_);
    line_.reset();
    kind_ = Kind::none;
    update_flow();
    if (state) state->fire(std::move(outcome));
  }

  Scheduler& scheduler_;
  StreamOptions options_;
  Kind kind_ = Kind::none;
  std::size_t want_ = 0;
  StatePtr<std::string> bytes_;
  StatePtr<std::optional<std::string>> line_;
  std::vector<StatePtr<void>> drains_;
  bool read_paused_ = false;
  bool write_paused_ = false;
  bool wake_posted_ = false;
};

}  // namespace detail

// --- Stream ------------------------------------------------------------------------------

Stream& Stream::operator=(Stream&& other) noexcept {
  if (this != &other) {
    Stream old(std::move(*this));
    core_ = std::move(other.core_);
  }
  return *this;
}

Stream::~Stream() {
  if (core_ && core_->transport_) core_->transport_->lose_connection();
}

detail::StreamCore& Stream::core() const {
  if (!core_) throw std::logic_error("Stream: empty (default-constructed or moved-from)");
  return *core_;
}

Deferred<std::string> Stream::read_some(std::size_t max) { return core().read_some(max); }
Deferred<std::string> Stream::read_exactly(std::size_t n) { return core().read_exactly(n); }
Deferred<std::optional<std::string>> Stream::read_line(std::size_t max) {
  return core().read_line(max);
}
Deferred<std::string> Stream::read_to_end(std::size_t max) { return core().read_to_end(max); }
Deferred<std::string> Stream::read_to_end() {
  detail::StreamCore& c = core();
  return c.read_to_end(c.read_limit());
}

void Stream::write(std::string_view data) {
  if (auto* t = core().transport_) t->write(data);
}
void Stream::write(std::string&& data) {
  if (auto* t = core().transport_) t->write(std::move(data));
}
Deferred<void> Stream::drain() { return core().drain(); }

void Stream::close() {
  if (auto* t = core().transport_) t->lose_connection();
}
void Stream::abort() {
  if (auto* t = core().transport_) t->abort_connection();
}
void Stream::close_write() {
  if (auto* t = core().transport_) t->lose_write_connection();
}

bool Stream::connected() const noexcept {
  return core_ && core_->transport_ && core_->transport_->connected();
}
bool Stream::at_eof() const noexcept { return core_ && core_->eof_ && core_->buffer_.empty(); }
std::size_t Stream::buffered() const noexcept { return core_ ? core_->buffer_.size() : 0; }
std::size_t Stream::write_buffer_size() const {
  return core_ && core_->transport_ ? core_->transport_->buffer_size() : 0;
}
std::optional<Reason> Stream::lost_reason() const { return core().lost_; }

Transport& Stream::transport() const {
  auto* t = core().transport_;
  if (!t) throw std::logic_error("Stream::transport: the connection is gone");
  return *t;
}

// --- StreamProtocol ----------------------------------------------------------------------

StreamProtocol::StreamProtocol(Scheduler& scheduler, Ready on_ready, StreamOptions options)
    : core_(std::make_shared<detail::StreamCore>(scheduler, options)),
      on_ready_(std::move(on_ready)) {}

StreamProtocol::~StreamProtocol() {
  // After connection_lost the pending read completes from the loop; without it (the
  // reactor is being destroyed) nothing ever will.
  if (!core_->lost_) core_->detach();
}

void StreamProtocol::connection_made() {
  core_->made(transport());
  if (!on_ready_) return;
  // Hand the stream over from the loop, not from inside the transport's call.
  auto ready = std::move(on_ready_);
  on_ready_ = nullptr;
  auto core = core_;
  // The Stream (not only the core) is built here so that, if the call is dropped without
  // running, the connection is closed rather than left open with nobody reading.
  auto stream = std::make_shared<Stream>(core);
  core_->schedule_ready([ready = std::move(ready), stream]() mutable { ready(std::move(*stream)); });
}

void StreamProtocol::data_received(std::string_view data) { core_->received(data); }

bool StreamProtocol::eof_received() {
  core_->eof();
  return true;  // half-close: our side stays writable until the Stream is closed
}

void StreamProtocol::connection_lost(const Reason& reason) { core_->lost(reason); }

// --- StreamFactory -----------------------------------------------------------------------

StreamFactory::StreamFactory(Scheduler& scheduler, StreamProtocol::Ready handler,
                             StreamOptions options)
    : scheduler_(scheduler), handler_(std::move(handler)), options_(options) {}

std::unique_ptr<Protocol> StreamFactory::build_protocol(const Address&) {
  return std::make_unique<StreamProtocol>(scheduler_, handler_, options_);
}

namespace {

class StreamConnectFactory;

// Owns the factory: a connector calls the factory's client_connection_lost after the
// protocol's connection_lost, before the protocol is destroyed.
class OwningStreamProtocol final : public StreamProtocol {
 public:
  OwningStreamProtocol(Reactor& reactor, Ready ready, StreamOptions options,
                       std::shared_ptr<StreamConnectFactory> factory)
      : StreamProtocol(reactor, std::move(ready), options), factory_(std::move(factory)) {}

 private:
  std::shared_ptr<StreamConnectFactory> factory_;
};

// Lives until the attempt fails or, once connected, as long as the protocol.
class StreamConnectFactory final : public ClientFactory {
 public:
  StreamConnectFactory(Reactor& reactor, StreamOptions options)
      : reactor_(reactor), options_(options) {}

  std::unique_ptr<Protocol> build_protocol(const Address&) override {
    auto keep = std::move(self_);
    Deferred<Stream> result = result_;
    return std::make_unique<OwningStreamProtocol>(
        reactor_,
        [result](Stream stream) mutable {
          if (!result.called()) result.callback(std::move(stream));
          // else: cancelled meanwhile; dropping the stream closes the connection
        },
        options_, std::move(keep));
  }

  void client_connection_failed(Connector&, const Reason& reason) override {
    auto keep = std::move(self_);
    Deferred<Stream> result = result_;
    // Fire from the loop, not from inside the connector's callback.
    reactor_.call_soon([keep, result, reason]() mutable {
      if (!result.called()) result.errback(ConnectionError(reason));
    });
  }

  std::shared_ptr<StreamConnectFactory> self_;
  std::shared_ptr<Connector> connector_;
  Deferred<Stream> result_;

 private:
  Reactor& reactor_;
  StreamOptions options_;
};

}  // namespace

Deferred<Stream> connect_stream_with(
    Reactor& reactor, const std::function<std::shared_ptr<Connector>(ClientFactory&)>& connect,
    StreamOptions options) {
  auto factory = std::make_shared<StreamConnectFactory>(reactor, options);
  std::weak_ptr<StreamConnectFactory> weak = factory;
  factory->result_ = Deferred<Stream>([weak](Deferred<Stream>&) {
    if (auto f = weak.lock())
      if (f->connector_) f->connector_->disconnect();
  });
  factory->self_ = factory;
  Deferred<Stream> result = factory->result_;
  try {
    factory->connector_ = connect(*factory);
  } catch (...) {
    factory->self_.reset();
    throw;
  }
  return result;
}

}  // namespace torsion
