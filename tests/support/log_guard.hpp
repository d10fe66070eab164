#pragma once
// Restores the default log sink and level when a test ends, whatever happens: for tests
// that route the process-wide log (framework/log.hpp) somewhere of their own.

#include "framework/log.hpp"

namespace torsion::test {

struct LogSinkGuard {
  LogSinkGuard() = default;
  LogSinkGuard(const LogSinkGuard&) = delete;
  LogSinkGuard& operator=(const LogSinkGuard&) = delete;
  ~LogSinkGuard() {
    set_log_sink(nullptr);
    set_log_level(LogLevel::info);
  }
};

}  // namespace torsion::test
