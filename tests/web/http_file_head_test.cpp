// How the head of a file response leaves over TCP (docs/web.md, "Files"): before a small
// file (at most 64 KiB) the head is held with MSG_MORE and leaves in the body's segment,
// one segment per answer; before a larger one it goes alone and the file follows. Seen
// from a plain client socket on 127.0.0.1, by the data segments its kernel counted
// (TCP_INFO tcpi_data_segs_in).

#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <linux/tcp.h>  // tcp_info with tcpi_data_segs_in (glibc's lacks it)
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <memory>
#include <string>

#include "framework/reactor.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/pattern.hpp"
#include "tests/support/wait.hpp"
#include "transports/tcp.hpp"
#include "web/http_server.hpp"
#include "tests/web/file_site.hpp"
#include "web/router.hpp"
#include "web/static_files.hpp"

using namespace torsion;
using namespace torsion::web;
using torsion::test::pattern_stream;
using torsion::test::wait_for;

namespace {

constexpr std::size_t kSmall = 4096;
constexpr std::size_t kLarge = 1024 * 1024;

// A directory with small.bin and large.bin (the test pattern), removed at the end.
struct Files : web::test::FileRoot {
  const std::string& root = dir;
  Files() : FileRoot("file-head") {
    write("small.bin", pattern_stream().bytes(kSmall));
    write("large.bin", pattern_stream().bytes(kLarge));
  }
};

// A non-blocking client socket on the server, read from the reactor's waits.
struct Client {
  int fd = -1;
  std::string in;
  explicit Client(int port) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int r = ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
    REQUIRE((r == 0 || errno == EINPROGRESS));
  }
  ~Client() { ::close(fd); }
  std::uint32_t data_segments_in() const {
    struct tcp_info info{};
    socklen_t len = sizeof info;
    REQUIRE(::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0);
    return info.tcpi_data_segs_in;
  }
  void read_some() {
    char buf[65536];
    for (;;) {
      const ::ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return;
      in.append(buf, static_cast<std::size_t>(n));
    }
  }
  // Sends GET `path` and waits for its whole answer (a body of `size`); returns the body.
  std::string get(Reactor& reactor, const std::string& path, std::size_t size) {
    const std::string request = "GET " + path + " HTTP/1.1\r\nHost: h\r\n\r\n";
    std::size_t sent = 0;
    wait_for(reactor, [&] {
      const ::ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<std::size_t>(n);
      return sent == request.size();
    }, "the request sent");
    std::size_t end = std::string::npos;
    wait_for(reactor, [&] {
      read_some();
      end = in.find("\r\n\r\n");
      return end != std::string::npos && in.size() >= end + 4 + size;
    }, "the whole answer");
    REQUIRE(in.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    REQUIRE(in.find("Content-Length: " + std::to_string(size) + "\r\n") < end);
    std::string body = in.substr(end + 4, size);
    in.erase(0, end + 4 + size);
    return body;
  }
};

using Server = web::test::FileSite;

}  // namespace

TEST_CASE("http_file_head: the head of a small file leaves in the file's segment, one per answer") {
  Files files;
  Server server(files.root);
  Client client(server.port->port());
  for (int i = 0; i < 5; ++i) {
    CAPTURE(i);
    const std::uint32_t before = client.data_segments_in();
    const std::string body = client.get(server.reactor, "/small.bin", kSmall);
    CHECK(pattern_stream().matches(0, body));
    CHECK(client.data_segments_in() - before == 1);  // the head alone would make it 2
  }
}

TEST_CASE("http_file_head: a large file after its head, then a small one, on one connection") {
  Files files;
  Server server(files.root);
  Client client(server.port->port());
  for (int i = 0; i < 3; ++i) {
    CAPTURE(i);
    CHECK(pattern_stream().matches(0, client.get(server.reactor, "/large.bin", kLarge)));
    const std::uint32_t before = client.data_segments_in();
    CHECK(pattern_stream().matches(0, client.get(server.reactor, "/small.bin", kSmall)));
    CHECK(client.data_segments_in() - before == 1);
  }
}
