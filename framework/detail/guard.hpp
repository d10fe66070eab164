#pragma once
// Private: the guard around a user's callback, one copy for every transport (the stream
// engine, child processes, UDP, the testing kit's Loopback): what the callback throws is
// caught, and the transport decides what follows (log it, abort the connection).

#include <exception>
#include <string>

namespace torsion::detail {

// Runs `fn`. If it throws, calls `failed(text, error)` with what() of a std::exception
// (null for any other exception) and the exception, and returns false.
template <class F, class Failed>
bool run_guarded(F&& fn, Failed&& failed) {
  try {
    fn();
    return true;
  } catch (const std::exception& e) {
    failed(e.what(), std::current_exception());
  } catch (...) {
    failed(nullptr, std::current_exception());
  }
  return false;
}

// For a log line: "exception in WHAT: TEXT", or "non-standard exception in WHAT" when
// `text` is null (run_guarded's arguments).
inline std::string exception_in(const char* what, const char* text) {
  return text ? std::string("exception in ") + what + ": " + text
              : std::string("non-standard exception in ") + what;
}

}  // namespace torsion::detail
