#pragma once
// For the few tests that exercise name resolution itself: whether a name resolves on this
// machine. A minimal container or chroot may have no /etc/hosts and no resolver, so even
// "localhost" fails there; such a test says why and skips instead of failing.

#include <netdb.h>
#include <sys/socket.h>

#include <doctest/doctest.h>

#include <string>

namespace torsion::test {

// True when getaddrinfo finds an IPv4 address for `name`; otherwise prints (through doctest)
// why the calling test is skipped.
inline bool name_resolves_or_skip(const char* name) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = ::getaddrinfo(name, nullptr, &hints, &found);
  if (found) ::freeaddrinfo(found);
  if (rc == 0) return true;
  const std::string why = std::string("skipped: '") + name + "' does not resolve here (" +
                          ::gai_strerror(rc) + "; no /etc/hosts or resolver?)";
  MESSAGE(why);
  return false;
}

}  // namespace torsion::test
