#pragma once
/// \file
/// Running under systemd without libsystemd: socket activation (the LISTEN_FDS protocol
/// of sd_listen_fds(3)) and readiness notification (sd_notify(3)'s NOTIFY_SOCKET).
///
/// With a .socket unit, systemd binds the listening sockets, starts the service with them
/// as descriptors 3, 4, ... and says so in LISTEN_FDS (how many), LISTEN_PID (for which
/// process) and LISTEN_FDNAMES (their names, from FileDescriptorName=, colon-separated).
/// listen_systemd serves one of them; the endpoint string "systemd:index=0" or
/// "systemd:name=web" does the same from a command line (transports/endpoints.hpp).

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "framework/listening_port.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"

namespace torsion {

/// One descriptor systemd passed to this process.
struct SystemdSocket {
  /// The descriptor: 3 for the first, then 4, 5...
  int fd = -1;
  /// Its name from LISTEN_FDNAMES ("unknown" when systemd gave none, as sd_listen_fds_with_names).
  std::string name;
};

/// The descriptors systemd passed to this process: empty unless LISTEN_PID is this
/// process's id and LISTEN_FDS is a count (at most 4096). Marks them close-on-exec (as
/// sd_listen_fds does) and leaves the environment as it is. Thread-safe.
std::vector<SystemdSocket> systemd_sockets();

/// Listens on the systemd socket number `index` (0 for the first, descriptor 3) through
/// adopt_listening_socket (transports/adopt.hpp) on a duplicate of it, so it may be
/// called again (by each reactor of a pool, or after stop_listening). Reports
/// std::errc::no_such_device_or_address in `ec` (and returns null) when there is no such
/// socket, and adopt_listening_socket's errors when it is not a listening TCP or Unix
/// stream socket.
std::shared_ptr<ListeningPort> listen_systemd(Reactor& reactor, std::size_t index,
                                              Factory& factory, std::error_code& ec);

/// As above, throwing std::system_error with a message that says what systemd passed.
std::shared_ptr<ListeningPort> listen_systemd(Reactor& reactor, std::size_t index,
                                              Factory& factory);

/// Listens on the first systemd socket named `name` (FileDescriptorName= in the .socket
/// unit). As the index form otherwise.
std::shared_ptr<ListeningPort> listen_systemd(Reactor& reactor, std::string_view name,
                                              Factory& factory, std::error_code& ec);

/// As above, throwing std::system_error.
std::shared_ptr<ListeningPort> listen_systemd(Reactor& reactor, std::string_view name,
                                              Factory& factory);

/// Tells the service manager about this service's state, as sd_notify(0, state): one
/// datagram such as "READY=1" (after listening), "STOPPING=1" (when a shutdown starts),
/// "STATUS=serving 10 clients" or several "KEY=value" lines. Returns false when
/// NOTIFY_SOCKET is not set (not run by systemd with Type=notify: nothing to do), true
/// once sent; reports a failure to send in `ec` (and returns false). Never blocks.
/// Thread-safe.
bool systemd_notify(std::string_view state, std::error_code& ec);

/// As above; a failure to send is returned as false too, and logged as a warning.
bool systemd_notify(std::string_view state);

/// Sends "READY=1" now and "STOPPING=1" when `reactor` starts a shutdown (a `before`
/// shutdown trigger): what a Type=notify service needs, in one call after listening.
/// Does nothing when NOTIFY_SOCKET is not set.
void notify_systemd_ready(Reactor& reactor);

}  // namespace torsion
