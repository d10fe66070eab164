#pragma once
// journald, for tests: a Unix datagram socket bound at a path in a temporary directory,
// so that journal_sink can be pointed at it and never at the real journal.

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "tests/support/temp_files.hpp"

namespace torsion::test {

struct FakeJournal {
  TempDir dir{"journal"};
  std::string path = dir / "socket";
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

  FakeJournal() {
    REQUIRE(fd >= 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    REQUIRE(path.size() < sizeof address.sun_path);
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
  }
  ~FakeJournal() { ::close(fd); }
  FakeJournal(const FakeJournal&) = delete;
  FakeJournal& operator=(const FakeJournal&) = delete;

  // The next datagram, or "" if none waits. A sender's sendto on a Unix datagram socket
  // queues it here before it returns, so there is nothing to wait for.
  std::string receive() const {
    std::string buf(256 * 1024, '\0');
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0) return "";
    buf.resize(static_cast<std::size_t>(n));
    return buf;
  }
};

}  // namespace torsion::test
