#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "docs/snippets/snippets.hpp"
#include "framework/protocol.hpp"
#include "framework/testing/string_transport.hpp"
#include "transports/tcp.hpp"

namespace docs {
namespace {

// [snippet:pull-producer]
// Sends `total` bytes without ever holding more than one chunk in the write queue: the
// transport calls resume_producing() each time its buffer is empty.
class Sender : public torsion::Protocol, public torsion::Producer {
 public:
  explicit Sender(std::size_t total) : left_(total) {}
  void connection_made() override { transport().register_producer(*this, /*streaming=*/false); }
  void resume_producing() override {
    if (left_ == 0) {
      transport().unregister_producer();
      transport().lose_connection();
      return;
    }
    const std::size_t n = std::min<std::size_t>(left_, 64 * 1024);
    transport().write(std::string(n, 'x'));
    left_ -= n;
  }
  void pause_producing() override {}  // a pull producer is never paused
  void stop_producing() override { left_ = 0; }

 private:
  std::size_t left_;
};
// [end]

// [snippet:proxy-back-pressure]
// One side of a proxy: what arrives here is written to `other`. Registering this
// connection's transport as the streaming producer of `other` stops reading here while
// `other` is above its high water mark, and resumes below the low one, so memory stays
// bounded whatever the speeds of the two peers.
class ProxySide : public torsion::Protocol {
 public:
  void pair_with(torsion::Transport& other) {
    other_ = &other;
    other.set_write_buffer_limits(256 * 1024, 64 * 1024);
    other.register_producer(transport(), /*streaming=*/true);
  }
  void data_received(std::string_view data) override {
    if (other_) other_->write(data);
  }

 private:
  torsion::Transport* other_ = nullptr;
};
// [end]

// [snippet:broadcast]
// Sends each message to every member. write() queues whatever a member's peer does not
// read, without limit, so a member already holding more than its high water mark of
// unsent bytes is too slow: it is aborted instead of being written to.
class Room {
 public:
  void join(torsion::Transport& member) { members_.push_back(&member); }
  void leave(torsion::Transport& member) { std::erase(members_, &member); }
  void broadcast(std::string_view message) {
    for (torsion::Transport* member : members_) {
      if (member->buffer_size() > member->write_buffer_limits().high)
        member->abort_connection();  // connection_lost (and leave) come later, from the loop
      else
        member->write(message);
    }
  }

 private:
  std::vector<torsion::Transport*> members_;
};
// [end]

class Count : public torsion::Protocol {
 public:
  explicit Count(std::size_t& n) : n_(n) {}
  void data_received(std::string_view data) override { n_ += data.size(); }

 private:
  std::size_t& n_;
};

}  // namespace

bool proxy_pauses_reading() {
  torsion::testing::StringTransport a, b;
  ProxySide side, other;
  a.connect(side);
  b.connect(other);
  b.set_buffering(true);  // b's peer reads nothing yet
  side.pair_with(b);
  side.data_received(std::string(300 * 1024, 'x'));
  const bool paused = a.reading_paused();
  b.drain();  // b's peer catches up
  return paused && !a.reading_paused();
}

BroadcastRun broadcast_to_a_reader_and_a_sleeper() {
  torsion::testing::StringTransport reader, sleeper;
  torsion::Protocol a, b;
  reader.connect(a);
  sleeper.connect(b);
  sleeper.set_buffering(true);  // its peer reads nothing
  Room room;
  room.join(reader);
  room.join(sleeper);
  BroadcastRun out;
  const std::string message(1000, 'm');
  for (int i = 0; i < 1000; ++i) {  // 1 MB each
    room.broadcast(message);
    out.most_queued = std::max(out.most_queued, sleeper.buffer_size());
  }
  out.reader_got = reader.value().size();
  out.sleeper_aborted = sleeper.aborted();
  return out;
}

std::size_t bytes_from_pull_producer(torsion::Reactor& reactor, std::size_t total) {
  std::size_t received = 0;
  int lost = 0;
  torsion::FunctionFactory<> counter(
      [&](const torsion::Address&) { return std::make_unique<Count>(received); });
  torsion::TcpListenOptions loopback;
  loopback.interface = "127.0.0.1";
  auto port = torsion::listen_tcp(reactor, 0, counter, loopback);
  struct Client : torsion::ClientFactory {
    std::size_t total;
    int& lost;
    Client(std::size_t t, int& l) : total(t), lost(l) {}
    std::unique_ptr<torsion::Protocol> build_protocol(const torsion::Address&) override {
      return std::make_unique<Sender>(total);
    }
    void client_connection_lost(torsion::Connector&, const torsion::Reason&) override { ++lost; }
  } client(total, lost);
  auto connector = torsion::connect_tcp(reactor, "127.0.0.1", port->port(), client);
  reactor.run_until([&] { return lost == 1 && reactor.connection_count() == 0; }, 20);
  return received;
}

}  // namespace docs
