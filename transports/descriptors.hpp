#pragma once
/// \file
/// Passing descriptors over Unix stream sockets (SCM_RIGHTS): send an open file, pipe or
/// socket — a listening socket for a new process of the same server, say — to the
/// process at the other end of a Unix connection.
///
/// send_descriptors queues bytes with descriptors attached, in order with the
/// transport's other writes; the peer's protocol, if it is also a DescriptorReceiver,
/// hears descriptors_received just before the data_received that holds the first of
/// those bytes (that call may start with bytes written before them). Descriptors a
/// protocol does not take are closed by the transport, so a peer cannot fill this
/// process's descriptor table.

#include <cstddef>
#include <span>
#include <string_view>

#include "framework/transport.hpp"

namespace torsion {

/// The most descriptors one send_descriptors call may attach, and the most a Unix
/// transport receives with one read: the kernel closes any beyond it (a warning is
/// logged), so a peer cannot make one read hold more.
inline constexpr std::size_t max_descriptors_per_message = 16;

/// Mixed into a Protocol (class P : public Protocol, public DescriptorReceiver) that
/// wants the descriptors its peer sends over a Unix socket. Protocols that are not
/// DescriptorReceivers never see descriptors: each one that arrives is closed.
class DescriptorReceiver {
 public:
  virtual ~DescriptorReceiver() = default;
  /// Descriptors that came with the next bytes (delivered by the data_received that
  /// follows this call at once), at most max_descriptors_per_message, each close-on-exec.
  /// Keep one by copying it and setting its entry to -1; the transport closes every
  /// entry still >= 0 when this returns (also when it throws, which aborts the
  /// connection as any callback's exception does).
  virtual void descriptors_received(std::span<int> fds) = 0;
};

/// Queues `data` for the peer of the Unix stream transport `transport` with duplicates
/// of `fds` attached (the caller keeps its own). The peer receives them with the first
/// byte of `data`; writes made before and after keep their order. The duplicates are
/// closed once sent, or if the connection closes first. Dropped, like any write, after
/// lose_connection or once the connection is closed. Throws std::invalid_argument when
/// `transport` is not a Unix stream transport (TCP, TLS, a test transport), `data` is
/// empty (descriptors travel with bytes) or `fds` is empty or holds more than
/// max_descriptors_per_message; std::system_error when a descriptor cannot be
/// duplicated (EBADF for one that is not open). Nothing is queued if it throws.
void send_descriptors(Transport& transport, std::span<const int> fds, std::string_view data);

}  // namespace torsion
