// FileSender's zero-copy path: a regular file over TCP and Unix sockets goes through
// FileWriter::write_file (sendfile(2)); other transports keep the buffered path.
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "framework/file_region.hpp"
#include "framework/file_sender.hpp"
#include "framework/testing/string_transport.hpp"
#include "tests/support/file_transfer.hpp"
#include "tests/support/recording.hpp"

using namespace torsion;
using namespace torsion::test;

TEST_CASE("sendfile: a file reaches a slow reader over TCP in partial sends, never read") {
  Reactor reactor;
  const std::size_t size = 6 * 1024 * 1024 + 123;
  PatternFile file(size);
  FileServer server;
  server.path = file.path;
  server.chunk = 4096;  // the buffered path's size; regions are set apart
  server.region = 1024 * 1024;
  server.send_buffer = 16 * 1024;  // every 1 MiB region takes many sends
  ReaderState st;
  st.nap = true;
  transfer(reactor, server, st);
  REQUIRE(server.result);
  CHECK_FALSE(*server.result);
  CHECK(server.lost->clean());
  CHECK(st.lost->clean());
  CHECK(st.received == size);
  CHECK_FALSE(st.corrupt);
  CHECK(server.reads == 0);                   // the kernel copied the file
  CHECK(server.write_calls > 7);              // 7 regions, most of them partial sends
  CHECK(server.max_buffer <= server.region);  // one region queued at a time
  CHECK(server.max_buffer > server.chunk);
}

TEST_CASE("sendfile: over a Unix socket, with bytes written before and after the file") {
  Reactor reactor;
  const std::size_t size = 3 * 1024 * 1024 + 7;
  PatternFile file(size);
  FileServer server;
  server.path = file.path;
  server.before = "<header>";
  server.after = "<trailer>";
  ReaderState st;
  st.skip = server.before.size();
  std::string tail;
  transfer(reactor, server, st, Kind::unix_socket);
  REQUIRE(server.result);
  CHECK_FALSE(*server.result);
  CHECK(st.lost->clean());
  CHECK(st.head == "<header>");
  // The trailer follows the file: the pattern check fails exactly on its bytes.
  CHECK(st.received == size + server.after.size());
  CHECK(server.reads == 0);
}

TEST_CASE("sendfile: the peer leaving mid-file ends the transfer (no SIGPIPE)") {
  Reactor reactor;
  PatternFile file(16 * 1024 * 1024);
  FileServer server;
  server.path = file.path;
  ReaderState st;
  st.abort_after = 512 * 1024;
  transfer(reactor, server, st);
  REQUIRE(server.result);
  CHECK(*server.result == error::cancelled);
  REQUIRE(server.lost);
  CHECK_FALSE(server.lost->clean());
  CHECK_FALSE(st.corrupt);
  CHECK(server.reads == 0);
}

TEST_CASE("sendfile: a file that shrinks while being sent closes the connection (EIO)") {
  Reactor reactor;
  const std::size_t size = 32 * 1024 * 1024, cut = 16 * 1024 * 1024;
  PatternFile file(size);
  FileServer server;
  server.path = file.path;
  server.length = size;  // promised, as a Content-Length is
  ReaderState st;
  bool truncated = false;
  st.on_progress = [&](std::uint64_t received) {
    if (truncated || received < 256 * 1024) return;
    truncated = true;
    REQUIRE(::truncate(file.path.c_str(), static_cast<off_t>(cut)) == 0);
  };
  transfer(reactor, server, st);
  REQUIRE(truncated);
  REQUIRE(server.lost);
  CHECK(server.lost->is(error::connection_lost));
  CHECK(server.lost->cause() == std::errc::io_error);
  CHECK(server.lost->message().find("file ended") != std::string::npos);
  REQUIRE(server.result);
  CHECK(*server.result == error::cancelled);
  CHECK(st.received == cut);  // everything the file still had, then the close
  CHECK_FALSE(st.corrupt);
}

TEST_CASE("sendfile: a file that grows is followed to its end without a length") {
  Reactor reactor;
  const std::size_t size = 1024 * 1024;
  PatternFile file(size);
  FileServer server;
  server.path = file.path;
  server.chunk = 64 * 1024;
  ReaderState st;
  st.nap = true;
  bool grown = false;
  st.on_progress = [&](std::uint64_t received) {
    if (grown || received < 64 * 1024) return;
    grown = true;
    const std::string more = pattern_stream().bytes(size + 4096).substr(size);
    FILE* f = std::fopen(file.path.c_str(), "ab");
    REQUIRE(f);
    REQUIRE(std::fwrite(more.data(), 1, more.size(), f) == more.size());
    std::fclose(f);
  };
  transfer(reactor, server, st);
  REQUIRE(server.result);
  CHECK_FALSE(*server.result);
  CHECK(st.received == size + 4096);
  CHECK_FALSE(st.corrupt);
}

TEST_CASE("FileSender keeps the buffered path where the transport cannot send files") {
  PatternFile file(300 * 1024);
  testing::StringTransport transport;
  Transport& any = transport;
  CHECK(dynamic_cast<FileWriter*>(&any) == nullptr);
  Protocol protocol;
  transport.connect(protocol);
  FileSender sender(64 * 1024);
  CHECK_THROWS_AS(sender.set_region_size(0), std::invalid_argument);
  std::optional<std::error_code> result;
  int reads = 0;
  sender.begin_transfer(
      transport, std::make_unique<CountingSource>(open_file_source(file.path), reads),
      [&](std::error_code ec) { result = ec; }, 400 * 1024);  // more than the file holds
  // StringTransport asks a pull producer once; each further chunk is asked for here, as a
  // real transport would once its buffer empties.
  for (int i = 0; i < 100 && !result; ++i) sender.resume_producing();
  REQUIRE(result);
  CHECK(*result == std::errc::io_error);  // the source ended before the length
  CHECK(reads > 0);
  CHECK(transport.value() == pattern_stream().bytes(300 * 1024));
}
