#include "protocols/throttling.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>
#include <vector>

namespace torsion {

// Forwards everything, counting bytes both ways, and pauses reading / the registered
// producer while the factory throttles, combining that with the protocol's own pause
// and the transport's flow control.
class ThrottlingProtocol final : public ProtocolWrapper {
 public:
  ThrottlingProtocol(ThrottlingFactory& factory, std::unique_ptr<Protocol> inner, Address peer)
      : ProtocolWrapper(factory, std::move(inner), std::move(peer)), throttler_(factory) {}

  void connection_made() override {
    update();
    ProtocolWrapper::connection_made();
  }
  void data_received(std::string_view data) override {
    throttler_.register_read(data.size());
    ProtocolWrapper::data_received(data);
  }
  void connection_lost(const Reason& reason) override {
    producer_ = nullptr;
    ProtocolWrapper::connection_lost(reason);
  }

  // Reading, as the wrapped protocol asks for it.
  void pause_producing() override {
    user_paused_ = true;
    update();
  }
  void resume_producing() override {
    user_paused_ = false;
    update();
  }

  void register_producer(Producer& producer, bool streaming) override {
    if (producer_) throw std::logic_error("register_producer: a producer is already registered");
    producer_ = &producer;
    streaming_ = streaming;
    flow_paused_ = producer_paused_ = pull_pending_ = false;
    transport().register_producer(proxy_, streaming);
    update();
  }
  void unregister_producer() override {
    producer_ = nullptr;
    transport().unregister_producer();
  }

  // Applies the factory's state and the protocol's wishes to the transport and producer.
  void update() {
    if (!has_transport()) return;
    const bool pause_reading = user_paused_ || throttler_.reads_throttled();
    if (pause_reading != reading_paused_) {
      reading_paused_ = pause_reading;
      if (pause_reading)
        transport().pause_producing();
      else
        transport().resume_producing();
    }
    if (!producer_) return;
    if (streaming_) {
      const bool pause = flow_paused_ || throttler_.writes_throttled();
      if (pause != producer_paused_) {
        producer_paused_ = pause;
        if (pause)
          producer_->pause_producing();
        else
          producer_->resume_producing();
      }
    } else if (pull_pending_ && !throttler_.writes_throttled()) {
      pull_pending_ = false;
      producer_->resume_producing();
    }
  }

 protected:
  void write_bytes(std::string_view data) override {
    throttler_.register_written(data.size());
    ProtocolWrapper::write_bytes(data);
  }
  void write_owned(std::string&& data) override {
    throttler_.register_written(data.size());
    ProtocolWrapper::write_owned(std::move(data));
  }
  void write_parts(std::span<const std::string_view> parts) override {
    std::size_t n = 0;
    for (auto part : parts) n += part.size();
    throttler_.register_written(n);
    ProtocolWrapper::write_parts(parts);
  }

 private:
  // What the real transport sees as the registered producer.
  struct Proxy final : Producer {
    ThrottlingProtocol& p;
    explicit Proxy(ThrottlingProtocol& owner) : p(owner) {}
    void pause_producing() override {
      p.flow_paused_ = true;
      p.update();
    }
    void resume_producing() override {
      if (p.streaming_)
        p.flow_paused_ = false;
      else
        p.pull_pending_ = true;
      p.update();
    }
    void stop_producing() override {
      if (Producer* producer = std::exchange(p.producer_, nullptr)) producer->stop_producing();
    }
  };

  ThrottlingFactory& throttler_;
  Proxy proxy_{*this};
  Producer* producer_ = nullptr;
  bool streaming_ = false;
  bool user_paused_ = false;
  bool reading_paused_ = false;
  bool flow_paused_ = false;
  bool producer_paused_ = false;
  bool pull_pending_ = false;
};

ThrottlingFactory::ThrottlingFactory(Factory& wrapped, Scheduler& scheduler, ThrottleLimits limits)
    : WrappingFactory(wrapped), scheduler_(scheduler), limits_(limits) {}

ThrottlingFactory::~ThrottlingFactory() {
  read_.unthrottle.cancel();
  write_.unthrottle.cancel();
}

std::unique_ptr<ProtocolWrapper> ThrottlingFactory::wrap(std::unique_ptr<Protocol> inner,
                                                         const Address& peer) {
  return std::make_unique<ThrottlingProtocol>(*this, std::move(inner), peer);
}

bool ThrottlingFactory::take(Bucket& bucket, std::size_t limit, std::size_t n,
                             void (ThrottlingFactory::*done)()) {
  bucket.total += n;
  if (limit == 0) return false;
  const double rate = static_cast<double>(limit);
  const double now = scheduler_.seconds();
  if (!bucket.started) {  // a full bucket: one second's worth of burst
    bucket.started = true;
    bucket.tokens = rate;
  } else {
    bucket.tokens = std::min(rate, bucket.tokens + (now - bucket.last) * rate);
  }
  bucket.last = now;
  bucket.tokens -= static_cast<double>(n);
  if (bucket.throttled || bucket.tokens >= 0) return false;
  bucket.throttled = true;
  bucket.unthrottle =
      scheduler_.call_later(-bucket.tokens / rate, [this, done] { (this->*done)(); });
  return true;
}

void ThrottlingFactory::register_read(std::size_t n) {
  if (take(read_, limits_.read_bytes_per_second, n, &ThrottlingFactory::unthrottle_reads))
    update_all();
}

void ThrottlingFactory::register_written(std::size_t n) {
  if (take(write_, limits_.write_bytes_per_second, n, &ThrottlingFactory::unthrottle_writes))
    update_all();
}

void ThrottlingFactory::unthrottle_reads() {
  read_.throttled = false;
  update_all();
}

void ThrottlingFactory::unthrottle_writes() {
  write_.throttled = false;
  update_all();
}

void ThrottlingFactory::update_all() {
  // update() may call into protocols, which may close connections (not destroy them:
  // destruction happens from the loop), so the list is stable; copy it anyway.
  const std::vector<ProtocolWrapper*> all = protocols();
  for (ProtocolWrapper* w : all) static_cast<ThrottlingProtocol*>(w)->update();
}

}  // namespace torsion
