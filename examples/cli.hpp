#pragma once
// What every example does with its command line, in one place: a port is a decimal number
// in range, and a failed setup (a bad argument, a port in use, a missing or unreadable
// certificate) ends the program with one line on stderr and exit status 2, never with
// std::terminate. Header-only and free of torsion, so the plain-POSIX why_* steps use it
// too.

#include <charconv>
#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>

namespace torsion::examples {

/// A bad command-line argument; run_main prints it like any other setup failure.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// `text` as a port number: decimal digits only, `min`..65535 (0 asks the kernel for a
/// free one). Throws UsageError naming the bad value otherwise.
inline int port_arg(std::string_view text, int min = 0) {
  int port = -1;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || port < min ||
      port > 65535)
    throw UsageError("port '" + std::string(text) + "' is not a number in " +
                     std::to_string(min) + "..65535");
  return port;
}

/// Calls run(argc, argv) and returns its status. An exception escaping it becomes one line,
/// "PROGRAM: error: WHAT", on stderr, and exit status 2.
inline int run_main(int argc, char** argv, int (*run)(int, char**)) {
  const char* program = argc > 0 ? argv[0] : "example";
  if (const char* slash = std::strrchr(program, '/')) program = slash + 1;
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::string what = e.what();
    for (char& c : what)
      if (c == '\n') c = ' ';  // one line, whatever the library's message holds
    std::fprintf(stderr, "%s: error: %s\n", program, what.c_str());
  } catch (...) {
    std::fprintf(stderr, "%s: error: unknown exception\n", program);
  }
  return 2;
}

}  // namespace torsion::examples
