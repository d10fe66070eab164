#pragma once
/// \file
/// Relaying: pair an accepted connection with an outgoing one and copy bytes both ways,
/// with back-pressure in both directions (what a proxy or a port forwarder does; Twisted's
/// portforward, plus the flow control it leaves out).
///
/// Each side's transport is registered as the streaming producer of the other: when one
/// side's write buffer passes its high mark, the other side stops reading until it drains
/// to the low mark, so memory per pair stays about a high mark plus one read per
/// direction, however fast one peer sends and however slowly the other reads. While the
/// outgoing connection is being made, what the client sends is held (reading pauses past
/// the high mark) and reading goes on, so a client that leaves meanwhile ends the attempt
/// at once. An EOF from one peer becomes lose_write_connection() towards the other
/// (half-close), and the pair closes when both directions are done or either side is lost.
///
/// Zero copy: when both sides are plain TCP or Unix sockets (not TLS, not behind a
/// protocol wrapper), each direction moves its bytes socket to pipe to socket with
/// splice(2), never through this process's memory, with the same back-pressure (the
/// pipe is sized above the writing side's high mark, and the reader pauses above it),
/// half-close, errors and ordering (what the client sent while connecting goes first).
/// Each direction makes its pipe at its first read (two descriptors, closed with the
/// pair). Every other transport, a kernel that cannot splice a socket, or a pipe that
/// cannot be had (out of descriptors, or pipe-max-size below the high mark) takes the
/// buffered path; a read that finds the pipe full (many small segments) is copied.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "framework/deferred.hpp"
#include "framework/protocol.hpp"

namespace torsion {

/// Starts the outgoing connection of a pair with `outbound` as its protocol and returns
/// the Deferred of connect_protocol_with (framework/connect_protocol.hpp), which fires
/// once connected and fails with the reason. For example:
///
///     [&](std::unique_ptr<Protocol> p) {
///       return connect_protocol_with(reactor, [&](ClientFactory& f) {
///         return connect_tcp(reactor, host, port, f);
///       }, std::move(p));
///     }
using RelayConnect = std::function<Deferred<Protocol*>(std::unique_ptr<Protocol>)>;

/// What a RelayFactory has relayed.
struct RelayStats {
  std::size_t pairs_open = 0;     ///< pairs with at least one side alive now
  std::size_t pairs_total = 0;    ///< accepted so far
  std::size_t failed = 0;         ///< outgoing connections that could not be made
  std::size_t peak_buffered = 0;  ///< the largest write buffer seen right after a write
  std::uint64_t spliced = 0;      ///< bytes moved with splice(2), never copied in here
};

/// The protocol for an accepted connection that relays it to the connection `connect`
/// makes (see the file comment). `stats`, if given, is updated while the pair lives.
/// If the outgoing connection fails, the accepted one is closed (after a warning in the
/// log naming the reason). `zero_copy` false copies every byte through this process even
/// between sockets (see the file comment; for comparison or a kernel without splice).
std::unique_ptr<Protocol> relay_protocol(RelayConnect connect,
                                         std::shared_ptr<RelayStats> stats = nullptr,
                                         bool zero_copy = true);

/// A factory that relays every accepted connection to one made by `connect`: a proxy.
/// Reactor thread only.
class RelayFactory : public Factory {
 public:
  /// Throws std::invalid_argument for an empty `connect`.
  explicit RelayFactory(RelayConnect connect);
  /// relay_protocol(connect, stats, zero_copy).
  std::unique_ptr<Protocol> build_protocol(const Address& peer) override;
  /// Counters over every pair this factory made.
  const RelayStats& stats() const noexcept { return *stats_; }
  /// Whether pairs of sockets splice (on by default); takes effect for the next pair.
  void set_zero_copy(bool enabled) noexcept { zero_copy_ = enabled; }

 private:
  RelayConnect connect_;
  bool zero_copy_ = true;
  std::shared_ptr<RelayStats> stats_ = std::make_shared<RelayStats>();
};

}  // namespace torsion
