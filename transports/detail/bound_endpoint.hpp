#pragma once
// Private: opening a listening socket, what TCP and UDP share.

#include <string>
#include <system_error>

namespace torsion::detail {

// After `socket` (a socket or an acceptor) was opened, set up and bound, with `ec` saying
// whether all of that went well: the local endpoint it is bound to. On an error, before
// or while asking, the socket is closed instead and a default endpoint returned.
template <class Socket>
typename Socket::endpoint_type bound_endpoint_or_close(Socket& socket, std::error_code& ec) {
  typename Socket::endpoint_type local;
  if (!ec) local = socket.local_endpoint(ec);
  if (ec) {
    std::error_code ignored;
    socket.close(ignored);
  }
  return local;
}

// The throwing listen_* functions: throws std::system_error "WHAT on INTERFACE:PORT" (`*`
// for every interface) if `ec` is set.
inline void throw_if_listen_failed(const std::error_code& ec, const char* what,
                                   const std::string& interface, int port) {
  if (ec)
    throw std::system_error(ec, std::string(what) + " on " +
                                    (interface.empty() ? "*" : interface) + ":" +
                                    std::to_string(port));
}

}  // namespace torsion::detail
