#pragma once
// Real peers for the web tests: finding a program, Debian's python3, and a
// ProcessProtocol that keeps a child's output and exit status.

#include <doctest/doctest.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/wait.hpp"
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

// Runs `argv` to its end, driving `reactor`; fails the test at the deadline.
inline Child run_child(Reactor& reactor, const std::vector<std::string>& argv) {
  Child child;
  spawn_process(reactor, child, argv);
  REQUIRE(torsion::test::wait_for(reactor, [&] { return child.status.has_value(); }, argv[0].c_str()));
  return child;
}

// True if Debian's python3 can import `module`.
inline bool python_has(Reactor& reactor, const std::string& module) {
  return run_child(reactor, {python(), "-c", "import " + module}).status->success();
}

// A python server running `script`, which listens on 127.0.0.1 port 0 and prints its
// ports on one line; stop() ends it by its PID (SIGTERM) and waits for its exit.
struct PythonServer {
  PythonServer(Reactor& reactor, const std::string& script) : reactor_(reactor) {
    process_ = spawn_process(reactor, child, {python(), "-c", script});
    REQUIRE(torsion::test::wait_for(
        reactor, [&] { return child.out.find('\n') != std::string::npos || child.status; },
        "the python server's ports"));
    std::istringstream line(child.out);
    for (int port; line >> port;) ports.push_back(port);
    INFO(child.err);
    REQUIRE_FALSE(ports.empty());
  }
  void stop() {
    REQUIRE(process_->signal_process(SIGTERM));
    REQUIRE(torsion::test::wait_for(reactor_, [&] { return child.status.has_value(); },
                                    "the python server's exit"));
  }
  Child child;
  std::vector<int> ports;

 private:
  Reactor& reactor_;
  std::shared_ptr<ProcessTransport> process_;
};

}  // namespace torsion::web::test
