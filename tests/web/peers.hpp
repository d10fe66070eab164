#pragma once
// Real peers for the web tests: finding a program, Debian's python3, and a
// ProcessProtocol that keeps a child's output and exit status.

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "transports/process.hpp"

namespace torsion::web::test {

// True if `program` is on PATH.
inline bool have(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  for (std::size_t at = 0; at <= dirs.size();) {
    const std::size_t colon = std::min(dirs.find(':', at), dirs.size());
    if (std::filesystem::exists(std::filesystem::path(dirs.substr(at, colon - at)) / program)) return true;
    at = colon + 1;
  }
  return false;
}

// Debian's python3 (where python3-h11, -websockets and -autobahn are installed), even
// when PATH puts another first.
inline std::string python() {
  return std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
}

// A child process's output and how it ended.
struct Child : ProcessProtocol {
  std::string out, err;
  std::optional<ExitStatus> status;
  void out_received(std::string_view d) override { out.append(d); }
  void err_received(std::string_view d) override { err.append(d); }
  void process_ended(const ExitStatus& s) override { status = s; }
};

}  // namespace torsion::web::test
