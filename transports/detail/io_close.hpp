#pragma once
// Closing an I/O object that may still have an operation queued on it.
//
// Asio 1.22's io_uring backend (-Dio_uring=true) frees an object's per-object state as soon
// as the object is closed, while the cancelled operation is still queued in it waiting for
// its completion from the kernel; the next socket or descriptor opened is given the same
// state, old operation included, and re-arms that operation on the new descriptor (often
// the same number). It then takes the new socket's connection, datagram or readiness for
// the closed object. So in such a build an object whose operation may be queued is only
// cancelled at once and closed when that operation's handler has run; with epoll, close()
// is immediate as before. The peer sees no difference: a clean close has already sent its
// FIN by shutdown(); an abort's RST leaves with the close, once the handler has run.

#include <asio/detail/config.hpp>
#include <system_error>

namespace torsion::detail {

/// True in a build whose I/O objects must not be closed with an operation queued.
inline constexpr bool kCloseAfterCancel =
#if defined(ASIO_HAS_IO_URING_AS_DEFAULT)
    true;
#else
    false;
#endif

/// Closes `object` now, or, when `operation_queued` and this build needs it, cancels its
/// operations and returns false: the caller closes it from that operation's handler.
template <class Object>
bool close_or_cancel(Object& object, bool operation_queued) {
  std::error_code ignored;
  if (kCloseAfterCancel && operation_queued) {
    object.cancel(ignored);
    return false;
  }
  object.close(ignored);
  return true;
}

}  // namespace torsion::detail
