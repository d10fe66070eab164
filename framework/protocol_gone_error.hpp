#pragma once
/// \file
/// ProtocolGoneError: what a callback bound to a protocol throws when it is called after
/// that protocol was destroyed (docs/protocols-and-factories.md, "Callbacks that outlive
/// their protocol"). framework/protocol.hpp and framework/deferred.hpp include it.

#include <stdexcept>

namespace torsion {

/// Thrown by a callback bound to a protocol (by Protocol::guard, or automatically by
/// capturing the protocol while it handles an event) when it is called after the protocol
/// was destroyed and a value is needed from it: the rest of a Deferred chain fails with it
/// (catch it with `catch_error<ProtocolGoneError>`). A void callback is skipped instead.
class ProtocolGoneError : public std::runtime_error {
 public:
  /// "the protocol this callback belonged to is gone".
  ProtocolGoneError() : std::runtime_error("the protocol this callback belonged to is gone") {}
};

}  // namespace torsion
