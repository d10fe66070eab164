#pragma once
// Private: the protocols handling an event on this thread now, so that a callback handed
// to Deferred::add_* or to call_soon / call_later meanwhile, and capturing one of them
// (`[this]`), is bound to that protocol's life: it never runs once the protocol is
// destroyed (docs/protocols-and-factories.md, "Callbacks that outlive their protocol").
//
// Where a protocol is in scope:
// - Protocol::make_connection and Protocol::end_connection (connection_made and
//   connection_lost, whatever the transport);
// - data_received and eof_received as the stream engine, ProtocolWrapper, the TLS layer,
//   StringTransport and Loopback deliver them, and as the HTTP server and the WebSocket
//   client forward them to the protocol that took the connection over after an upgrade
//   (data_to, eof_to below);
// - while a callback bound to the protocol runs, so that the callbacks it hands out in
//   turn (the next timer, the next step) are bound too.
//
// How a callable is recognised: bind_to_owner(fn) reads the object representation of
// the callable itself (its captures, for a lambda) as unsigned char, which C++ allows
// for any object, and compares every pointer-aligned run of sizeof(void*) bytes with
// std::memcmp against the object representation of the address of each protocol in
// scope: the Protocol base and the most-derived object (what a member function's `this`
// is). No pointer is formed from those bytes. What is therefore NOT recognised: a
// callable that reaches the protocol through something it owns on the heap
// (std::function, a shared_ptr to a struct, a std::vector of pointers), a pointer to a
// member or to a base other than Protocol and the most-derived object, and a coroutine
// that has already started: binding decides whether a callable is called, not whether a
// suspended coroutine frame resumes. The rare false match (a captured integer equal to
// the protocol's address) only means the callable is skipped once that protocol is gone.

#include <cstddef>
#include <functional>
#include <memory>
#include <string_view>
#include <type_traits>
#include <utility>

#include "framework/protocol_gone_error.hpp"

namespace torsion {

class Protocol;

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

// Hands `data`, or the end of input, to `protocol` with it in scope, as a transport does:
// for a protocol that forwards its input to another one (a ProtocolWrapper, the HTTP
// server or the WebSocket client after an upgrade).
void data_to(Protocol& protocol, std::string_view data);
bool eof_to(Protocol& protocol);

// The protocol a callable belongs to: its life token (expires with it) and its address,
// to put it back in scope while the callable runs. Empty when it belongs to none.
struct Owner {
  std::weak_ptr<void> life;
  const Protocol* protocol = nullptr;
};

// The protocol in scope whose address occurs in `bytes` (see above), or none.
Owner owner_in(const unsigned char* bytes, std::size_t size);

// The protocol in scope that `fn` captures, or none.
template <class F>
Owner owner_of(const F& fn) {
  if (ProtocolScope::current() == nullptr) return {};
  return owner_in(reinterpret_cast<const unsigned char*>(std::addressof(fn)), sizeof(F));
}

// `fn` bound to `owner` (when it has one): once that protocol is destroyed a call does
// nothing (void) or throws ProtocolGoneError; while it lives, a call runs `fn` with the
// protocol in scope. With no owner, `fn` is called as it is.
template <class F>
auto bind_to(Owner owner, F fn) {
  return [owner = std::move(owner), fn = std::move(fn)](auto&&... args) mutable -> decltype(auto) {
    using R = std::invoke_result_t<F&, decltype(args)...>;
    if (owner.protocol != nullptr && owner.life.expired()) {
      if constexpr (std::is_void_v<R>)
        return;
      else
        throw ProtocolGoneError();
    }
    const ProtocolScope scope(owner.protocol);
    return std::invoke(fn, std::forward<decltype(args)>(args)...);
  };
}

// `fn`, bound to the protocol in scope that it captures, if any.
template <class F>
auto bind_to_owner(F fn) {
  Owner owner = owner_of(fn);
  return bind_to(std::move(owner), std::move(fn));
}

}  // namespace detail
}  // namespace torsion
