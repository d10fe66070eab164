#include "protocols/relay.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "framework/file_region.hpp"
#include "framework/log.hpp"

namespace torsion {
namespace {

// One direction's pipe, when both sides are sockets (PipeReader and FileWriter): the
// bytes one side reads are spliced into it and the other side's transport splices them
// out, so they never enter this process. Closed when the pair and the last pipe region
// queued on the writing side are gone.
class Pipe {
 public:
  // A pipe that holds more than `high` bytes (a FileWriter's high mark: reading pauses
  // above it, so a read always finds room), or null when none can be had.
  static std::shared_ptr<Pipe> open(std::size_t high) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return nullptr;
    auto pipe = std::make_shared<Pipe>(fds[0], fds[1]);
    const std::size_t want = std::min<std::size_t>(high + 64 * 1024, 1u << 30);
    int size = ::fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(want));
    if (size < 0) size = ::fcntl(fds[1], F_GETPIPE_SZ);
    if (size < 0 || static_cast<std::size_t>(size) <= high) return nullptr;
    pipe->capacity = static_cast<std::size_t>(size);
    return pipe;
  }
  Pipe(int out, int in) noexcept : read_end(out), write_end(in) {}
  ~Pipe() {
    ::close(read_end);
    ::close(write_end);
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;

  int read_end;
  int write_end;
  std::size_t capacity = 0;
};

// One relayed pair: shared by its two sides (and, while connecting, by the outgoing side
// that connect_protocol_with holds), so it lives as long as either connection.
class Pair {
 public:
  Pair(RelayConnect how, std::shared_ptr<RelayStats> counters, bool splice)
      : connect(std::move(how)), stats(std::move(counters)), zero_copy(splice) {
    if (stats) {
      ++stats->pairs_open;
      ++stats->pairs_total;
    }
  }
  ~Pair() {
    if (stats) --stats->pairs_open;
  }
  Pair(const Pair&) = delete;
  Pair& operator=(const Pair&) = delete;

  RelayConnect connect;
  std::shared_ptr<RelayStats> stats;
  Transport* inbound = nullptr;
  Transport* outbound = nullptr;
  PipeSink* inbound_sink = nullptr;  // the inbound side, while connected
  Deferred<void> attempt;  // the outgoing connection, while it is being made
  bool connecting = false;
  std::string early;       // from the client while connecting, at most about a high mark
  bool early_eof = false;  // and its EOF, if it half-closed meanwhile
  bool zero_copy;          // splice where both sides are sockets
  // Per direction, by the side that reads: the side's other transport as a FileWriter
  // while splicing, and the pipe between them, made at the first read.
  FileWriter* writer_to[2] = {nullptr, nullptr};
  std::shared_ptr<Pipe> pipe_from[2];
};

void note_failure(Pair& pair, const std::exception_ptr& error) {
  if (pair.stats) ++pair.stats->failed;
  if (error_is<CancelledError>(error)) return;  // the client left first
  log(LogLevel::warning, "relay: the outgoing connection failed: " + describe_error(error));
}

class Side final : public Protocol, public PipeSink {
 public:
  Side(std::shared_ptr<Pair> pair, bool inbound) : pair_(std::move(pair)), inbound_(inbound) {}

  void connection_made() override {
    Pair& p = *pair_;
    mine() = &transport();
    if (inbound_) {
      p.inbound_sink = this;
      // Keep reading while the outgoing connection is made, so that a client that leaves
      // meanwhile is noticed at once; what it sends is held (bounded below).
      connect();
      return;
    }
    if (!p.inbound) {  // the client left while we connected
      transport().lose_connection();
      return;
    }
    // What the client sent while we connected goes first, then its EOF if it came.
    if (!p.early.empty()) transport().write(std::exchange(p.early, {}));
    if (p.early_eof) transport().lose_write_connection();
    // Each side produces what the other writes: a full buffer pauses the reader.
    transport().register_producer(*p.inbound, true);
    p.inbound->register_producer(transport(), true);
    if (p.zero_copy) splice_both(p, *this);
    p.inbound->resume_producing();
  }

  // PipeSink: room in this direction's pipe (made when its first bytes wait), counted
  // from what the other side still has to send, which holds the pipe's bytes.
  Room pipe_room() override {
    Pair& p = *pair_;
    Transport* to = other();
    if (to == nullptr || !to->connected()) return {};
    std::shared_ptr<Pipe>& pipe = p.pipe_from[dir()];
    if (!pipe) {  // made when the first bytes wait: a direction never used has none
      int waiting = 0;
      if (::ioctl(transport().native_handle(), FIONREAD, &waiting) != 0 || waiting <= 0) return {};
      pipe = Pipe::open(to->write_buffer_limits().high);
    }
    if (!pipe) {  // out of descriptors or pipe pages: this direction copies
      p.writer_to[dir()] = nullptr;
      if (auto* reader = dynamic_cast<PipeReader*>(&transport())) reader->read_into_pipe(nullptr);
      return {};
    }
    const std::size_t queued = to->buffer_size();
    if (queued >= pipe->capacity) return {};
    return {pipe->write_end, pipe->capacity - queued, queued == 0};
  }

  // PipeSink: `n` bytes wait in the pipe; the other side sends them from there.
  void piped(std::size_t n) override {
    Pair& p = *pair_;
    Transport* to = other();
    FileWriter* writer = p.writer_to[dir()];
    if (to == nullptr || writer == nullptr) return;  // pipe_room offered no room then
    writer->write_file(FileRegion{p.pipe_from[dir()]->read_end, 0, n, p.pipe_from[dir()], true});
    if (p.stats) {
      p.stats->spliced += n;
      p.stats->peak_buffered = std::max(p.stats->peak_buffered, to->buffer_size());
    }
  }

  void data_received(std::string_view data) override {
    Pair& p = *pair_;
    if (Transport* to = other()) {
      to->write(data);
      if (p.stats) p.stats->peak_buffered = std::max(p.stats->peak_buffered, to->buffer_size());
    } else if (inbound_) {  // still connecting: hold it, and stop reading past a bound
      p.early.append(data);
      if (p.early.size() >= transport().write_buffer_limits().high) transport().pause_producing();
    }
  }

  bool eof_received() override {
    if (Transport* to = other()) {
      to->lose_write_connection();
      return true;  // keep the other direction going
    }
    if (!inbound_) return false;
    // EOF while still connecting. With nothing sent, the client is gone: close, which
    // gives the attempt up (connection_lost). After a request, it is a half-close:
    // forward the request and the EOF once connected.
    if (pair_->early.empty()) return false;
    pair_->early_eof = true;
    return true;
  }

  void connection_lost(const Reason&) override {
    Pair& p = *pair_;
    mine() = nullptr;
    if (inbound_) p.inbound_sink = nullptr;
    if (Transport* to = other()) {
      to->unregister_producer();  // it must not call our dying transport
      to->lose_connection();      // flush what it holds, then close
    } else if (inbound_ && p.connecting) {
      p.attempt.cancel();  // still connecting: give up
    }
  }

 private:
  void connect() {
    Pair& p = *pair_;
    std::weak_ptr<Pair> weak = pair_;
    p.connecting = true;
    try {
      p.attempt = p.connect(std::make_unique<Side>(pair_, false))
                      .add_both([weak](Outcome<Protocol*> outcome) {
                        auto pair = weak.lock();
                        if (!pair) return;
                        pair->connecting = false;
                        if (outcome.ok()) return;
                        note_failure(*pair, outcome.error());
                        if (pair->inbound) pair->inbound->lose_connection();
                      });
    } catch (...) {
      p.connecting = false;
      note_failure(p, std::current_exception());
      transport().lose_connection();
    }
  }

  // Both sides connected: where both are sockets (not TLS, not behind a wrapper), each
  // reads into its pipe from now on (what the client sent meanwhile is queued already).
  static void splice_both(Pair& p, Side& outbound) {
    PipeSink* inbound = p.inbound_sink;
    auto* in_reader = dynamic_cast<PipeReader*>(p.inbound);
    auto* out_reader = dynamic_cast<PipeReader*>(p.outbound);
    auto* in_writer = dynamic_cast<FileWriter*>(p.inbound);
    auto* out_writer = dynamic_cast<FileWriter*>(p.outbound);
    if (!inbound || !in_reader || !out_reader || !in_writer || !out_writer) return;
    p.writer_to[0] = out_writer;
    p.writer_to[1] = in_writer;
    if (!in_reader->read_into_pipe(inbound) || !out_reader->read_into_pipe(&outbound)) {
      in_reader->read_into_pipe(nullptr);
      p.writer_to[0] = p.writer_to[1] = nullptr;
    }
  }

  int dir() const noexcept { return inbound_ ? 0 : 1; }
  Transport*& mine() { return inbound_ ? pair_->inbound : pair_->outbound; }
  Transport* other() const { return inbound_ ? pair_->outbound : pair_->inbound; }

  std::shared_ptr<Pair> pair_;
  bool inbound_;
};

}  // namespace

std::unique_ptr<Protocol> relay_protocol(RelayConnect connect, std::shared_ptr<RelayStats> stats,
                                         bool zero_copy) {
  if (!connect) throw std::invalid_argument("relay_protocol: empty connect function");
  return std::make_unique<Side>(
      std::make_shared<Pair>(std::move(connect), std::move(stats), zero_copy), true);
}

RelayFactory::RelayFactory(RelayConnect connect) : connect_(std::move(connect)) {
  if (!connect_) throw std::invalid_argument("RelayFactory: empty connect function");
}

std::unique_ptr<Protocol> RelayFactory::build_protocol(const Address&) {
  return relay_protocol(connect_, stats_, zero_copy_);
}

}  // namespace torsion
