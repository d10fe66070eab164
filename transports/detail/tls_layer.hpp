#pragma once
// Private: TLS as a layer over any stream engine (Twisted's TLSMemoryBIOProtocol, the
// BIO pair inside asio::ssl's engine). listen_ssl, connect_ssl and start_tls all run the
// same layer over the one stream engine (stream_engine.hpp), which keeps doing what it
// does for every connection: the read loop, the write queue, corking, flow control and the
// TCP close. The layer only turns ciphertext into plaintext and back:
//
//     inner protocol  <--plaintext-->  TlsLayer  <--ciphertext-->  StreamEngine  <-->  socket
//     (its transport()                  (Protocol of the engine,     (read loop, queue,
//      is the layer)                     Transport of the inner)       flow control, close)
//
//   data_received(ciphertext) -> SSL_do_handshake / SSL_read, which read it through the
//       layer's BIO -> inner.data_received(plaintext), one record at a time
//   inner.write(plaintext) -> SSL_write -> the BIO -> below().write(ciphertext), one write
//       per batch
//
// Memory: OpenSSL reads and writes through one BIO of the layer's own (bio_method()), not
// a pair of memory BIOs, which would keep buffers as large as the largest read (128 KiB)
// and the largest write for the life of the connection. OpenSSL reads the ciphertext straight
// from the engine's view; what it leaves unread when data_received returns (the start of
// a record, or records held back by pause_producing) is copied to in_rest_, and in_rest_'s
// memory is freed once it has been read. What OpenSSL writes gathers in out_ only until
// flush() hands it below, the same call. With SSL_MODE_RELEASE_BUFFERS (tls_context.cpp),
// which frees OpenSSL's own record buffers whenever they are empty, an idle connection
// holds no buffer for its bytes, before the handshake, during it and after any burst.
// (SSL_free_buffers would add nothing: it frees those same record buffers, which that
// mode has freed already.) What a pending handshake still holds is OpenSSL's state for
// it: the SSL, its 16 KiB handshake-message buffer and a 2 x 4 KiB buffering BIO, freed
// when the handshake ends (tests/benchmarks/README.md has the figures).
//
// Phases:  plain (start_tls, before begin) --begin--> handshaking --done--> open
//          handshaking --failure / deadline / peer gone--> failed (the hook hears why)
// Closing, from open, independent of the phase:
//   lose_connection:       close_notify after what was written; then, over
//                          listen_ssl/connect_ssl, wait (close_timeout) for the peer's
//                          close_notify, reading and dropping what comes; then the
//                          engine's lose_connection. start_tls does not wait.
//   lose_write_connection: close_notify after what was written, and reading goes on;
//                          the peer's close_notify then ends both directions.
//   the peer's close_notify: the inner hears eof_received; the peer's TCP EOF without it
//                          is a truncation (error::connection_lost).
//
// Batching (what makes 1000 small writes two records): writes made while the layer
// delivers (inside data_received, the inner's connection_made included) gather as
// plaintext in corked_; each full record is encrypted as soon as it is there, the rest
// when data_received returns. Outside it the same holds per loop turn, by the engine's own
// rule and mechanism (framework/detail/turn.hpp): a write corks and asks to be told when
// the turn ends (TurnEndHook), and turn_ended() encrypts the batch, whose ciphertext the
// engine then corks and sends in that same turn's end. Outside any turn a write is
// encrypted at once. A write
// that takes buffer_size() above the high mark uncorks at once, so that the engine pauses a
// streaming producer from inside that write. Whatever must follow the written bytes
// (close_notify) uncorks first; abort_connection and an exception drop what is corked.
//
// Flow control is the engine's: register_producer, the water marks, buffer_size() and
// set_pause_reading_when_full pass through (buffer_size() adds what the layer still holds).
// The engine holds reading back as it does for TCP: the inner's answers, written while the
// layer delivers, reach the engine as ciphertext inside its own data_received.
// pause_producing pauses the engine and stops handing on records the layer has already
// read; resume_producing
// resumes both (the records waiting are delivered from the loop). During the handshake
// the engine goes on reading (the handshake needs it) and only the delivery is held; it
// is paused once the handshake is done.
//
// Before the handshake is done (start_tls), writes are held as plaintext (held_), which
// the engine cannot see: the producer is registered below through a membrane
// (ProducerMembrane), and the layer pauses a streaming producer itself once held_ takes
// buffer_size() above the high mark. When the handshake is done the held bytes go below
// and the engine takes the pause over: it resumes the producer at the low mark, as
// always; the membrane makes sure the producer hears each pause and resume once.

#include <openssl/ssl.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "framework/delayed_call.hpp"
#include "framework/detail/turn.hpp"
#include "framework/log.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "transports/tls.hpp"

namespace torsion::detail {

class TlsLayer final : public Protocol, public Transport, public TurnEndHook {
 public:
  using LostHook = std::function<void(const Reason&)>;
  // Runs once when the handshake ends: with null on success (the hook then calls start()
  // to attach the inner protocol, or closes the connection), else with why it failed (the
  // connection is closing; the hook only reports). Called from the loop, inside the
  // engine's data_received or a timer; not called if the connection is released unended.
  using HandshakeHook = std::function<void(TlsLayer&, const Reason* failure)>;

  struct Settings {
    Reactor* reactor = nullptr;     // null (start_tls): no deadline, no close wait
    double handshake_timeout = 0;   // seconds; 0: none
    bool wait_close_notify = false; // lose_connection waits for the peer's close_notify
    double close_timeout = 0;       // seconds that wait lasts; 0: no limit
    LogContext log;                 // the engine's connection, for log lines
    // A server's SSL is made from this when the first bytes arrive (a connection that
    // says nothing costs no OpenSSL state); the constructor's `ssl` is then null.
    SSL_CTX* ssl_ctx = nullptr;
    // What `ssl` (or ssl_ctx) comes from, kept as long as the layer: OpenSSL's callbacks
    // point into it, and a reload of the context must not free it under the connection.
    std::shared_ptr<const void> config;
  };

  // start_tls: passes every event and call through to `inner` until begin().
  explicit TlsLayer(std::unique_ptr<Protocol> inner);
  // listen_ssl / connect_ssl: TLS on `ssl` (owned; a client's already configured; a
  // server's may be null, made from settings.ssl_ctx later) from connection_made on;
  // `on_handshake` attaches the inner protocol.
  TlsLayer(SSL* ssl, bool server, Settings settings, HandshakeHook on_handshake);
  ~TlsLayer() override;
  TlsLayer(const TlsLayer&) = delete;
  TlsLayer& operator=(const TlsLayer&) = delete;

  // start_tls: switches to TLS on `ssl` (owned). Throws std::logic_error if TLS was
  // started already or the connection is not up. Over a stream engine, lose_connection
  // then waits up to `close_timeout` seconds (0: no limit) for the peer's close_notify,
  // reading and dropping what comes, as listen_ssl/connect_ssl do; so that the peer's
  // last records (a TLS 1.3 session ticket) are read, not answered with a reset that
  // would destroy what the peer has not read yet.
  // `config` is kept as Settings::config is.
  void begin(SSL* ssl, bool server, double close_timeout,
             std::shared_ptr<const void> config = {});

  // Attaches the inner protocol (after a successful handshake) and calls its
  // connection_made; `on_lost` runs after its connection_lost (client connectors).
  void start(std::unique_ptr<Protocol> inner, LostHook on_lost = {});

  // The negotiated parameters once the handshake is done.
  std::optional<TlsInfo> info() const;
  const LogContext& log_context() const noexcept { return settings_.log; }

  // Protocol: events from the engine below.
  void connection_made() override;
  void data_received(std::string_view data) override;
  bool eof_received() override;
  void connection_lost(const Reason& reason) override;

  // Transport: calls from the inner protocol.
  void lose_connection() override;
  void abort_connection() override;
  void lose_write_connection() override;
  Address get_peer() const override { return below().get_peer(); }
  Address get_host() const override { return below().get_host(); }
  std::size_t buffer_size() const override {
    return below().buffer_size() + held_.size() + corked_.size();
  }
  void register_producer(Producer& p, bool streaming) override;
  void unregister_producer() override;
  void set_write_buffer_limits(std::size_t high, std::size_t low) override {
    below().set_write_buffer_limits(high, low);
    if (!corked_.empty()) cork_room_ = room_below_high_mark();
  }
  WriteBufferLimits write_buffer_limits() const override {
    return below().write_buffer_limits();
  }
  // The engine holds reading when a write inside its data_received (the layer's
  // ciphertext, written while the layer delivers) takes its queue above the high mark.
  void set_pause_reading_when_full(bool enabled) override {
    below().set_pause_reading_when_full(enabled);
  }
  bool pauses_reading_when_full() const override { return below().pauses_reading_when_full(); }
  bool connected() const override;
  int native_handle() const override { return below().native_handle(); }
  void pause_producing() override;
  void resume_producing() override;
  void stop_producing() override { lose_connection(); }

  // TurnEndHook: the turn in which writes were corked has ended.
  void turn_ended() noexcept override;

 protected:
  void write_bytes(std::string_view data) override;

 private:
  enum class Phase : std::uint8_t { plain, handshaking, open, failed };

  // The producer as the engine sees it: it passes every call on, except that a pause
  // (from the engine, or from the layer while the handshake holds the writes) and the
  // matching resume reach the producer once, whichever of the two asked; and a pull
  // producer is not asked for more while the layer holds bytes (the engine asks again
  // once they have gone below and been sent, as their write tells it to).
  struct ProducerMembrane final : Producer {
    Producer* inner = nullptr;
    const std::string* held = nullptr;  // the layer's held_
    bool streaming = false;
    bool paused_below = false;  // by the engine
    bool paused_held = false;   // by the layer: held_ is above the high mark
    void pause_producing() override {
      const bool was = paused_below || paused_held;
      paused_below = true;
      if (!was && inner) inner->pause_producing();
    }
    void resume_producing() override {
      if (!streaming && held && !held->empty()) return;
      paused_below = false;
      if (!paused_held && inner) inner->resume_producing();
    }
    void stop_producing() override {
      if (inner) inner->stop_producing();
    }
  };

  static constexpr std::size_t kRecord = 16 * 1024;  // the most plaintext one record holds

  // The layer's BIO: OpenSSL's reads take in_rest_, then in_; its writes append to out_.
  static int bio_read(BIO* bio, char* out, int size);
  static int bio_write(BIO* bio, const char* data, int size);
  static long bio_ctrl(BIO* bio, int cmd, long num, void* ptr);
  static BIO_METHOD* bio_method();

  Transport& below() const { return Protocol::transport(); }
  bool stopped() const noexcept { return phase_ == Phase::failed || aborted_; }

  void attach_ssl();
  void step();
  void handshake_done();
  void read_records();
  void handshake_failed(Reason reason);
  void fail(Reason reason);
  std::size_t room_below_high_mark() const;
  void uncork();
  void encrypt(std::string_view data);
  void flush();
  void shut_write();
  void finish_close();
  void post_drain();
  void check_held_high_water();
  void release_held_pause();
  void keep_unread();

  std::unique_ptr<Protocol> inner_;
  ProducerMembrane producer_;
  SSL* ssl_ = nullptr;
  Settings settings_;
  HandshakeHook on_handshake_;
  LostHook on_lost_;
  DelayedCall timer_;  // the handshake deadline, then the close_notify wait
  // Posted work (a drain after resume) holds a weak_ptr to this: the layer dies with the
  // engine's protocol, maybe before it runs.
  std::shared_ptr<TlsLayer*> alive_;
  std::string held_;    // start_tls: written before the handshake completed
  std::string corked_;  // written, not yet encrypted (< kRecord but at the high mark)
  std::string_view in_;     // the engine's bytes, during data_received only
  std::string in_rest_;     // ciphertext left unread by an earlier data_received
  std::size_t in_rest_read_ = 0;  // how much of in_rest_ OpenSSL has read
  std::string out_;         // ciphertext OpenSSL wrote, until flush() hands it below
  std::optional<Reason> failure_;  // what the inner hears instead of the engine's reason
  std::size_t cork_room_ = 0;  // corked_ may hold this much before the high mark is passed
  Phase phase_ = Phase::plain;
  bool server_ = false;
  bool closing_ = false;       // lose_connection was called
  bool write_shut_ = false;    // lose_write_connection was called
  bool notify_sent_ = false;   // our close_notify is out
  bool peer_closed_ = false;   // the peer's close_notify was read
  bool aborted_ = false;
  bool delivering_ = false;    // inside data_received: writes are corked
  bool paused_ = false;        // the inner paused reading
  bool drain_posted_ = false;
};

}  // namespace torsion::detail
