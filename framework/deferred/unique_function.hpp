#pragma once
// Private: detail::UniqueFunction, the move-only function wrapper Deferred's chains hold
// (part of framework/deferred.hpp).

#include <concepts>
#include <cstddef>
#include <memory>
#include <type_traits>
#include <utility>

namespace torsion::detail {

// A move-only std::function (std::move_only_function is C++23).
template <class Sig>
class UniqueFunction;

template <class R, class... A>
class UniqueFunction<R(A...)> {
 public:
  UniqueFunction() = default;
  UniqueFunction(std::nullptr_t) {}  // NOLINT: implicit like std::function
  template <class F>
    requires(!std::same_as<std::decay_t<F>, UniqueFunction> && std::invocable<F&, A...>)
  UniqueFunction(F&& f)  // NOLINT: implicit like std::function
      : impl_(std::make_unique<Impl<std::decay_t<F>>>(std::forward<F>(f))) {}
  explicit operator bool() const noexcept { return impl_ != nullptr; }
  R operator()(A... args) { return impl_->call(std::forward<A>(args)...); }

 private:
  struct Base {
    virtual ~Base() = default;
    virtual R call(A... args) = 0;
  };
  template <class F>
  struct Impl final : Base {
    template <class G>
    explicit Impl(G&& g) : f(std::forward<G>(g)) {}
    R call(A... args) override { return f(std::forward<A>(args)...); }
    F f;
  };
  std::unique_ptr<Base> impl_;
};

}  // namespace torsion::detail
