// static_files on what a directory may hold: a file (one open(2) and one fstat(2), no
// stat(2) before), a directory (its index.html, or 404), a FIFO (404 at once: the open
// does not block waiting for a writer), a missing path (404). Through a StringTransport.

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <system_error>

#include "framework/file_sender.hpp"
#include "tests/web/server_support.hpp"
#include "web/router.hpp"
#include "web/static_files.hpp"

using namespace torsion;
using namespace torsion::web;
using namespace torsion::web::test;  // Conn, responses

namespace {

// A temporary root: a.txt, sub/index.html, empty/, and a FIFO.
struct Root {
  std::string dir;
  Root() {
    char name[] = "/tmp/torsion-static-XXXXXX";
    REQUIRE(::mkdtemp(name) != nullptr);
    dir = name;
    write(dir + "/a.txt", "file a\n");
    REQUIRE(::mkdir((dir + "/sub").c_str(), 0755) == 0);
    write(dir + "/sub/index.html", "<p>index</p>\n");
    REQUIRE(::mkdir((dir + "/empty").c_str(), 0755) == 0);
    REQUIRE(::mkfifo((dir + "/pipe").c_str(), 0644) == 0);
  }
  ~Root() {
    ::unlink((dir + "/a.txt").c_str());
    ::unlink((dir + "/sub/index.html").c_str());
    ::rmdir((dir + "/sub").c_str());
    ::rmdir((dir + "/empty").c_str());
    ::unlink((dir + "/pipe").c_str());
    ::rmdir(dir.c_str());
  }
  static void write(const std::string& path, const std::string& data) {
    FILE* f = std::fopen(path.c_str(), "wb");
    REQUIRE(f);
    REQUIRE(std::fwrite(data.data(), 1, data.size(), f) == data.size());
    std::fclose(f);
    const ::timespec at[2] = {{1700000000, 0}, {1700000000, 0}};  // the validators' input
    REQUIRE(::utimensat(AT_FDCWD, path.c_str(), at, 0) == 0);
  }
};

std::string get(Conn& c, const std::string& path) {
  std::string out = c.send("GET " + path + " HTTP/1.1\r\nHost: h\r\n\r\n");
  for (int i = 0; i < 100 && (c.clock.pending_count() > 0 || c.t.producer()); ++i) {
    c.t.drain();  // a pull producer (the FileSender) is asked again once the buffer empties
    c.clock.advance(0);
  }
  return out + without_date(c.t.take());
}

}  // namespace

TEST_CASE("http_static_files: a file, a directory's index, a FIFO and a missing path") {
  Root root;
  Router router;
  router.get("/*path", static_files(root.dir));
  Conn c(router);
  const auto file = responses(get(c, "/a.txt"));
  REQUIRE(file.size() == 3);
  CHECK(file[0] ==
        "head 200 OK 1.1 keep [Server=torsion] [Content-Length=7] "
        "[Content-Type=text/plain; charset=utf-8] [ETag=\"6553f100-7\"] "
        "[Last-Modified=Tue, 14 Nov 2023 22:13:20 GMT] [Accept-Ranges=bytes]");
  CHECK(file[1] == "body file a\n");
  const auto index = responses(get(c, "/sub/"));
  REQUIRE(index.size() == 3);
  CHECK(index[1] == "body <p>index</p>\n");
  CHECK(responses(get(c, "/sub")).at(1) == "body <p>index</p>\n");
  CHECK(responses(get(c, "/empty/")).at(0).rfind("head 404 ", 0) == 0);
  CHECK(responses(get(c, "/pipe")).at(0).rfind("head 404 ", 0) == 0);  // returned, not blocked
  CHECK(responses(get(c, "/missing")).at(0).rfind("head 404 ", 0) == 0);
  CHECK(responses(get(c, "/a.txt/x")).at(0).rfind("head 404 ", 0) == 0);  // ENOTDIR
  CHECK_FALSE(c.t.disconnecting());
}

TEST_CASE("http_static_files: open_regular_file says why it refuses; set_file refuses a FIFO") {
  Root root;
  std::error_code ec;
  auto file = open_regular_file(root.dir + "/a.txt", ec);
  REQUIRE(file);
  CHECK_FALSE(ec);
  CHECK(file->size_at_open() == 7u);
  CHECK(file->file_descriptor() >= 0);
  CHECK_FALSE(open_regular_file(root.dir + "/sub", ec));
  CHECK(ec == std::errc::is_a_directory);
  CHECK_FALSE(open_regular_file(root.dir + "/pipe", ec));
  CHECK(ec == std::errc::invalid_argument);
  CHECK_FALSE(open_regular_file(root.dir + "/missing", ec));
  CHECK(ec == std::errc::no_such_file_or_directory);
  Response r(200);
  CHECK_THROWS_AS(r.set_file(root.dir + "/pipe"), std::system_error);
  CHECK_THROWS_AS(r.set_file(nullptr, 0), std::invalid_argument);
}
