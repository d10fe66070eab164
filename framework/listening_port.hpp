#pragma once
/// \file
/// ListeningPort: the handle a listen_* call returns.

#include <cstdint>

#include "framework/address.hpp"

namespace torsion {

/// A listening socket. It keeps listening while the reactor runs, whether or not the
/// caller keeps the handle, until stop_listening(). Reactor thread only.
class ListeningPort {
 public:
  virtual ~ListeningPort();
  /// The bound address; for port 0 it holds the port the kernel picked.
  virtual Address get_host() const = 0;
  /// The bound port (get_host().port()).
  std::uint16_t port() const { return get_host().port(); }
  /// Closes the listening socket; connections already accepted are not touched.
  /// Idempotent.
  virtual void stop_listening() = 0;
  /// True until stop_listening().
  virtual bool listening() const = 0;
};

}  // namespace torsion
