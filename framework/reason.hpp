#pragma once
/// \file
/// Why a connection ended, and torsion's own error codes.

#include <exception>
#include <string>
#include <system_error>

namespace torsion {

/// torsion's own conditions, carried in a std::error_code with torsion::error_category().
enum class error {
  connection_done = 1,  ///< the connection was closed cleanly
  connection_lost,      ///< the connection was lost in a non-clean way (reset, broken pipe...)
  connection_aborted,   ///< this side called abort_connection()
  connection_refused,   ///< the peer refused the connection
  timed_out,            ///< an operation did not finish before its deadline
  lookup_failed,        ///< a host name could not be resolved
  callback_threw,       ///< a protocol or factory callback threw; the exception is attached
  refused_by_factory,   ///< build_protocol() returned null
  connect_failed,       ///< connecting failed for another reason (see the OS code)
  cancelled,            ///< the operation was cancelled by the user
  line_too_long,        ///< a line exceeded the receiver's limit
  length_limit_exceeded,///< a length-prefixed frame exceeded the receiver's limit
  malformed_input,      ///< the peer sent bytes that violate the protocol
  datagram_failed,      ///< a datagram could not be sent or received (see the OS code)
  tls_failed,           ///< the TLS handshake or a TLS record failed (see the cause)
};

/// The category of torsion::error codes; its name is "torsion".
const std::error_category& error_category() noexcept;

/// Makes a std::error_code from a torsion::error.
std::error_code make_error_code(error e) noexcept;

/// Returns `ec` with Asio's own system category replaced by std::system_category(), so
/// that OS errors from Asio compare equal to std::errc values; other codes pass through.
std::error_code normalize_os_error(std::error_code ec) noexcept;

/// Why a connection ended (or failed to start): a kind (one of torsion::error), the OS
/// code behind it when there is one, a human-readable message, and the exception when a
/// callback threw. Cheap to copy; safe to keep after the callback returns.
class Reason {
 public:
  /// A clean close (error::connection_done).
  Reason() : Reason(error::connection_done) {}

  /// A reason of kind `kind`, optionally caused by the OS error `cause`, with extra
  /// detail appended to the message.
  explicit Reason(error kind, std::error_code cause = {}, std::string detail = {},
                  std::exception_ptr exception = nullptr);

  /// Maps an OS error from a read or write to a Reason: reset, broken pipe and the like
  /// become connection_lost, refusal becomes connection_refused, time-outs timed_out.
  static Reason from_os_error(std::error_code cause, std::string detail = {});

  /// The kind of ending.
  error kind() const noexcept { return kind_; }
  /// The OS error that caused it (in std::system_category, so it compares equal to
  /// std::errc values), or an empty code when there is none.
  std::error_code cause() const noexcept { return cause_; }
  /// The exception a callback threw, when kind() is callback_threw.
  std::exception_ptr exception() const noexcept { return exception_; }
  /// One line for humans that says each thing once: the kind, the OS error's text when it
  /// adds something (e.g. "connection lost: Connection reset by peer"; not for a refusal,
  /// a time-out or a cancel, which the kind already names), then the detail in
  /// parentheses, e.g. "connection refused (127.0.0.1:1)".
  const std::string& message() const noexcept { return message_; }

  /// True for a clean close.
  bool clean() const noexcept { return kind_ == error::connection_done; }
  /// True when the kind is `e`.
  bool is(error e) const noexcept { return kind_ == e; }

 private:
  error kind_;
  std::error_code cause_;
  std::string message_;
  std::exception_ptr exception_;
};

}  // namespace torsion

/// Lets a torsion::error convert to std::error_code (and compare with one).
template <>
struct std::is_error_code_enum<torsion::error> : std::true_type {};
