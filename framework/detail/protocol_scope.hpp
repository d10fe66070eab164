#pragma once
// Private: the protocols handling an event on this thread now, so that a callback handed
// to Deferred::add_* or to call_soon / call_later meanwhile, and capturing one of them
// (`[this]`), is bound to that protocol's life: it never runs once the protocol is
// destroyed (framework/protocol.hpp, "Callbacks that outlive their protocol").
//
// The stream engine, ProtocolWrapper and the TLS layer open a ProtocolScope around every
// connection_made, data_received and eof_received they deliver. bind_to_owner(fn) then
// looks for the address of a protocol in scope among the bytes of the callable (a
// captured `this` or pointer); a callable that captures none of them is left unbound, so
// library code that merely runs inside a protocol's event keeps its own callbacks.

#include <cstddef>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace torsion {

class Protocol;

/// A callback bound to a protocol (by Protocol::guard, or by capturing it while it
/// handles an event) ran after the protocol was destroyed, and the chain needed its value.
class ProtocolGoneError : public std::runtime_error {
 public:
  /// "the protocol this callback belonged to is gone".
  ProtocolGoneError() : std::runtime_error("the protocol this callback belonged to is gone") {}
};

namespace detail {

class ProtocolScope {
 public:
  // Marks `protocol` (may be null: then nothing) as handling an event until destroyed.
  explicit ProtocolScope(const Protocol* protocol) noexcept;
  ~ProtocolScope();
  ProtocolScope(const ProtocolScope&) = delete;
  ProtocolScope& operator=(const ProtocolScope&) = delete;

  // The innermost scope on this thread, or null.
  static const ProtocolScope* current() noexcept;

  const Protocol* protocol_;
  const void* derived_;  // the most-derived object's address (a member's `this`)
  const ProtocolScope* outer_;
  bool pushed_;
};

// The life token of the protocol in scope whose address occurs in `bytes`, or empty.
std::weak_ptr<void> owner_in(const unsigned char* bytes, std::size_t size);

// The life token of the protocol in scope that `fn` captures, or an empty one.
template <class F>
std::weak_ptr<void> owner_of(const F& fn) {
  if (ProtocolScope::current() == nullptr) return {};
  return owner_in(reinterpret_cast<const unsigned char*>(std::addressof(fn)), sizeof(F));
}

// `fn`, bound to the protocol it captures if one is handling an event now: once that
// protocol is destroyed, a call does nothing (void) or throws ProtocolGoneError.
template <class F>
auto bind_to_owner(F fn) {
  std::weak_ptr<void> life = owner_of(fn);
  const bool bound = !life.expired();  // the protocol in scope is alive now
  return [life = std::move(life), bound,
          fn = std::move(fn)](auto&&... args) mutable -> decltype(auto) {
    using R = std::invoke_result_t<F&, decltype(args)...>;
    if (bound && life.expired()) {
      if constexpr (std::is_void_v<R>)
        return;
      else
        throw ProtocolGoneError();
    }
    return std::invoke(fn, std::forward<decltype(args)>(args)...);
  };
}

}  // namespace detail
}  // namespace torsion
