#pragma once
// Helpers shared by the tests of file responses (http_range_test, http_conditional_test):
// a temporary directory whose files all get one fixed mtime (the validators' input),
// static_files over TCP on 127.0.0.1:0 for real clients, and the loop that drives a
// FileSender to its end over a StringTransport.

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>

#include "framework/listening_port.hpp"
#include "framework/reactor.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/temp_files.hpp"
#include "tests/web/server_support.hpp"
#include "transports/tcp.hpp"
#include "web/router.hpp"
#include "web/static_files.hpp"

namespace torsion::web::test {

// 1700000000 (Tue, 14 Nov 2023 22:13:20 GMT): the mtime of every FileRoot file.
inline constexpr std::int64_t kFileMtime = 1700000000;

// A temporary directory (test::TempDir) whose files are written with the mtime kFileMtime.
struct FileRoot : torsion::test::TempDir {
  const std::string& dir = path;
  explicit FileRoot(const std::string& name) : TempDir(name) {}
  // Writes `data` as `name`, with the mtime kFileMtime.
  void write(const std::string& name, const std::string& data) const {
    {
      std::ofstream out(*this / name, std::ios::binary);
      out << data;
      REQUIRE(out.good());
    }
    const ::timespec at[2] = {{kFileMtime, 0}, {kFileMtime, 0}};
    REQUIRE(::utimensat(AT_FDCWD, (*this / name).c_str(), at, 0) == 0);
  }
  std::string read(const std::string& name) const { return torsion::test::read_file(*this / name); }
};

// static_files(root) on 127.0.0.1:0 over TCP (sendfile), for real clients.
struct FileSite {
  Reactor reactor;
  Router router;
  std::unique_ptr<HttpFactory> site;
  std::shared_ptr<ListeningPort> port;
  explicit FileSite(const std::string& root) {
    reactor.set_handle_signals(false);
    router.get("/*path", static_files(root));
    site = std::make_unique<HttpFactory>(reactor, router);
    port = listen_tcp(reactor, 0, *site, torsion::test::loopback());
  }
  std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(port->port()) + std::string(path);
  }
};

// Drives `c` until its FileSender has sent everything (a pull producer is asked again
// once the transport's buffer empties); returns what was written since the last take
// (Date kept).
inline std::string drain_files(Conn& c) {
  for (int i = 0; i < 100 && (c.clock.pending_count() > 0 || c.t.producer()); ++i) {
    c.t.drain();
    c.clock.advance(0);
  }
  return c.t.take();
}

}  // namespace torsion::web::test
