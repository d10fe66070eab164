#pragma once
/// \file
/// io_backend(): which system interface this build of torsion runs its sockets on.

namespace torsion {

/// "io_uring" when torsion was built with -Dio_uring=true (Asio's io_uring backend: sockets,
/// timers and descriptor watches on one ring), else "epoll". An io_uring build has no
/// fallback: where the kernel refuses io_uring, making a Reactor throws std::system_error
/// that says so (docs/installing.md).
const char* io_backend() noexcept;

}  // namespace torsion
