#pragma once
/// \file
/// ThrottlingFactory: limits the read and write bandwidth of all of a factory's
/// connections together.

#include <cstddef>
#include <memory>

#include "framework/delayed_call.hpp"
#include "protocols/wrapping.hpp"

namespace torsion {

/// Bandwidth limits in bytes per second, shared by all connections of a factory;
/// 0 means no limit.
struct ThrottleLimits {
  /// Bytes per second read, all connections together; 0: no limit.
  std::size_t read_bytes_per_second = 0;
  /// Bytes per second written, all connections together; 0: no limit.
  std::size_t write_bytes_per_second = 0;
};

/// Limits the total read and write bandwidth of the connections of `wrapped` (Twisted's
/// policies.ThrottlingFactory, with a token bucket instead of a once-a-second check).
///
/// Each direction has a bucket that holds up to one second of bandwidth and refills at
/// the limit. Bytes read (data_received) or written (write*) are taken from it; when it
/// runs dry the direction is throttled until the bucket is back at zero:
///  - reads: every connection's transport is paused (pause_producing), so the kernel's
///    window, not memory, absorbs the peer's data; a protocol that pauses its own
///    transport stays paused after unthrottling;
///  - writes: every producer the protocols registered is paused (streaming producers) or
///    not pulled (pull producers) until unthrottling; plain writes are never dropped or
///    delayed, so to limit output write through a producer (as Chargen does).
/// Over any interval the bytes moved are at most limit * (interval + 1 s) plus one read
/// or one producer's chunk. Timers run on the Scheduler given (ManualClock in tests).
class ThrottlingFactory : public WrappingFactory {
 public:
  /// Timers run on `scheduler`, which must outlive the factory.
  ThrottlingFactory(Factory& wrapped, Scheduler& scheduler, ThrottleLimits limits);
  /// Cancels the pending unthrottle timers.
  ~ThrottlingFactory() override;

  /// The limits in force.
  const ThrottleLimits& limits() const noexcept { return limits_; }
  /// True while reads are throttled.
  bool reads_throttled() const noexcept { return read_.throttled; }
  /// True while writes are throttled.
  bool writes_throttled() const noexcept { return write_.throttled; }
  /// Bytes read through this factory's connections so far.
  std::size_t total_read() const noexcept { return read_.total; }
  /// Bytes written through this factory's connections so far.
  std::size_t total_written() const noexcept { return write_.total; }

 protected:
  /// Wraps in the throttling wrapper; final because the factory relies on its type.
  std::unique_ptr<ProtocolWrapper> wrap(std::unique_ptr<Protocol> inner, const Address& peer) final;

 private:
  friend class ThrottlingProtocol;
  struct Bucket {
    double tokens = 0;
    double last = 0;
    std::size_t total = 0;
    bool throttled = false;
    bool started = false;
    DelayedCall unthrottle;
  };
  void register_read(std::size_t n);
  void register_written(std::size_t n);
  // Takes n bytes from the bucket; returns true if this throttles the direction.
  bool take(Bucket& bucket, std::size_t limit, std::size_t n, void (ThrottlingFactory::*done)());
  void unthrottle_reads();
  void unthrottle_writes();
  void update_all();

  Scheduler& scheduler_;
  ThrottleLimits limits_;
  Bucket read_;
  Bucket write_;
};

}  // namespace torsion
