#include <memory>

#include "docs/snippets/snippets.hpp"
#include "framework/protocol.hpp"
#include "transports/tcp.hpp"

namespace docs {
namespace {

void a_slice_of_work() {  // stands for real work: parsing, compressing, computing
  volatile long sink = 0;
  for (long i = 0; i < 100'000; ++i) sink = sink + i;
}

// [snippet:transport-write]
class BulkWriter : public torsion::Protocol {
 public:
  explicit BulkWriter(std::size_t bytes) : bytes_(bytes) {}
  void connection_made() override {
    std::string payload;
    payload.reserve(bytes_);
    while (payload.size() + 4 <= bytes_) payload += "foo\n";
    transport().write(std::move(payload));  // sends what the kernel takes, queues the rest
    transport().lose_connection();          // closes once every byte is handed over
  }

 private:
  std::size_t bytes_;
};
// [end]

// [snippet:idle-work]
// Runs a slice of work whenever the reactor has nothing else to do, until `done`.
void work_when_idle(torsion::Reactor& reactor, const bool& done, long& slices) {
  if (done) return;
  a_slice_of_work();
  ++slices;
  reactor.call_idle([&reactor, &done, &slices] { work_when_idle(reactor, done, slices); });
}
// [end]

class Count : public torsion::Protocol {
 public:
  explicit Count(std::size_t& n) : n_(n) {}
  void data_received(std::string_view data) override { n_ += data.size(); }

 private:
  std::size_t& n_;
};

}  // namespace

std::size_t bulk_write_with_idle_work(torsion::Reactor& reactor, std::size_t bytes,
                                      long& slices) {
  std::size_t received = 0;
  torsion::FunctionFactory<> counter(
      [&](const torsion::Address&) { return std::make_unique<Count>(received); });
  torsion::TcpListenOptions loopback;
  loopback.interface = "127.0.0.1";
  auto port = torsion::listen_tcp(reactor, 0, counter, loopback);
  bool done = false;
  torsion::FunctionFactory<torsion::ClientFactory> writer(
      [&](const torsion::Address&) { return std::make_unique<BulkWriter>(bytes); });
  auto connector = torsion::connect_tcp(reactor, "127.0.0.1", port->port(), writer);
  work_when_idle(reactor, done, slices);
  reactor.run_until([&] { return received == bytes && reactor.connection_count() == 0; }, 20);
  done = true;
  return received;
}

}  // namespace docs
