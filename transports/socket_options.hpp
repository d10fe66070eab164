#pragma once
/// \file
/// Socket options of a connection, set through the Transport interface (no Asio types):
/// TCP_NODELAY, TCP keep-alive, and the kernel's send and receive buffer sizes.
///
/// They act on Transport::native_handle(), so they work on any socket-backed transport
/// (TCP, and for the buffer sizes also Unix sockets). On a transport without a descriptor
/// (an in-memory test transport, or one already closed) they fail with
/// std::errc::bad_file_descriptor; a TCP option on a non-TCP socket fails with the OS's
/// error (EOPNOTSUPP). Each setter has a throwing form (std::system_error naming the
/// option) and an error_code form; getters throw. Reactor thread only.

#include <system_error>

#include "framework/transport.hpp"

namespace torsion {

/// Turns Nagle's algorithm off (`on` = true: TCP_NODELAY, small writes go out at once) or
/// back on. torsion turns it off on every new TCP connection by default, as asyncio does
/// (see TcpListenOptions::no_delay).
void set_tcp_no_delay(Transport& transport, bool on);
/// As above, reporting failure in `ec`.
void set_tcp_no_delay(Transport& transport, bool on, std::error_code& ec);
/// Whether TCP_NODELAY is set.
bool tcp_no_delay(const Transport& transport);

/// Keep-alive timing; 0 leaves the system's default (Linux: 7200 s idle, 75 s interval,
/// 9 probes).
struct TcpKeepAlive {
  int idle_seconds = 0;      ///< idle time before the first probe (TCP_KEEPIDLE)
  int interval_seconds = 0;  ///< time between probes (TCP_KEEPINTVL)
  int probes = 0;            ///< unanswered probes before the connection is dropped (TCP_KEEPCNT)
};

/// Turns TCP keep-alive probes on or off (SO_KEEPALIVE, off by default), with optional
/// timing. A dead peer found by keep-alive ends the connection with connection_lost
/// (timed_out). Throws std::invalid_argument for a negative field, naming it.
void set_tcp_keep_alive(Transport& transport, bool on, const TcpKeepAlive& timing = {});
/// As above, reporting an OS failure in `ec` (bad arguments still throw).
void set_tcp_keep_alive(Transport& transport, bool on, const TcpKeepAlive& timing,
                        std::error_code& ec);
/// Whether SO_KEEPALIVE is set.
bool tcp_keep_alive(const Transport& transport);

/// Asks the kernel for a send buffer of `bytes` (SO_SNDBUF). Linux doubles the value for
/// its bookkeeping and clamps it to net.core.wmem_max; send_buffer_size() reports what it
/// chose. This is the kernel's buffer, below the transport's own write queue (whose
/// limits are Transport::set_write_buffer_limits). Throws std::invalid_argument if
/// `bytes` <= 0.
void set_send_buffer_size(Transport& transport, int bytes);
/// As above, reporting an OS failure in `ec`.
void set_send_buffer_size(Transport& transport, int bytes, std::error_code& ec);
/// The kernel's send buffer size in bytes (SO_SNDBUF as read back).
int send_buffer_size(const Transport& transport);

/// Asks the kernel for a receive buffer of `bytes` (SO_RCVBUF), as set_send_buffer_size.
void set_receive_buffer_size(Transport& transport, int bytes);
/// As above, reporting an OS failure in `ec`.
void set_receive_buffer_size(Transport& transport, int bytes, std::error_code& ec);
/// The kernel's receive buffer size in bytes (SO_RCVBUF as read back).
int receive_buffer_size(const Transport& transport);

}  // namespace torsion
