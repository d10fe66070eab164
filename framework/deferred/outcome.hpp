#pragma once
/// \file
/// Outcome<T>: a value of type T or an error, and the helpers that look inside an error
/// (describe_error, error_is). Part of framework/deferred.hpp; include that.

#include <exception>
#include <optional>
#include <string>
#include <utility>

namespace torsion {

/// One line describing the exception inside `error` ("std::runtime_error: boom" style:
/// its what() for std::exception, "non-standard exception" otherwise; "no error" for null).
std::string describe_error(const std::exception_ptr& error);

/// True if `error` holds an exception of type E (or derived from it).
template <class E>
bool error_is(const std::exception_ptr& error) {
  if (!error) return false;
  try {
    std::rethrow_exception(error);
  } catch (const E&) {
    return true;
  } catch (...) {
    return false;
  }
}

/// The result of an operation: a value of type T or an error. What add_both callbacks
/// and deferred_list() hand out. Movable; copyable when T is.
template <class T>
class Outcome {
 public:
  /// A successful outcome.
  static Outcome success(T value) { return Outcome(std::move(value)); }
  /// A failed outcome; `error` must not be null.
  static Outcome failure(std::exception_ptr error) { return Outcome(std::move(error)); }

  /// True when it holds a value.
  bool ok() const noexcept { return !error_; }
  /// The value; rethrows the error if it failed.
  T& value() & {
    if (error_) std::rethrow_exception(error_);
    return *value_;
  }
  /// As above, for a const Outcome.
  const T& value() const& {
    if (error_) std::rethrow_exception(error_);
    return *value_;
  }
  /// As above, moving the value out of an expiring Outcome.
  T&& value() && {
    if (error_) std::rethrow_exception(error_);
    return std::move(*value_);
  }
  /// The error, or null when it succeeded.
  const std::exception_ptr& error() const noexcept { return error_; }

 private:
  explicit Outcome(T value) : value_(std::move(value)) {}
  explicit Outcome(std::exception_ptr error) : error_(std::move(error)) {}
  std::optional<T> value_;
  std::exception_ptr error_;
};

/// Outcome of an operation that produces no value.
template <>
class Outcome<void> {
 public:
  /// A successful outcome.
  static Outcome success() { return Outcome(nullptr); }
  /// A failed outcome; `error` must not be null.
  static Outcome failure(std::exception_ptr error) { return Outcome(std::move(error)); }
  /// True when it succeeded.
  bool ok() const noexcept { return !error_; }
  /// Returns, or rethrows the error.
  void value() const {
    if (error_) std::rethrow_exception(error_);
  }
  /// The error, or null when it succeeded.
  const std::exception_ptr& error() const noexcept { return error_; }

 private:
  explicit Outcome(std::exception_ptr error) : error_(std::move(error)) {}
  std::exception_ptr error_;
};

}  // namespace torsion
