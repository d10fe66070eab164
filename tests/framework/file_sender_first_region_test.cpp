// FileSender hands a file with a known length to the transport in the begin_transfer call
// (the first sendfile region is queued behind what was written before, so an HTTP head and
// its file go out in one flush), and open_file_source knows a regular file's size without
// another look-up (ByteSource::size_at_open).
#include <doctest/doctest.h>

#include <string>

#include "framework/file_sender.hpp"
#include "tests/support/file_transfer.hpp"

using namespace torsion;
using namespace torsion::test;

namespace {

// A server that writes `head`, then sends the file in one region (64 MiB, larger than the
// file) into a 64 KiB send buffer, so the kernel cannot take the region at once.
void head_then_file(FileServer& server, const std::string& path, std::string head) {
  server.path = path;
  server.before = std::move(head);
  server.region = 64 * 1024 * 1024;
  server.send_buffer = 64 * 1024;
}

}  // namespace

TEST_CASE("open_file_source: a regular file's size is known at open, a device's is not") {
  PatternFile file(12345);
  const auto source = open_file_source(file.path);
  REQUIRE(source->size_at_open());
  CHECK(*source->size_at_open() == 12345u);
  CHECK(source->file_descriptor() >= 0);
  const auto device = open_file_source("/dev/null");
  CHECK_FALSE(device->size_at_open());
  CHECK(device->file_descriptor() == -1);
}

TEST_CASE("FileSender with a length queues the first region in begin_transfer, behind the head") {
  Reactor reactor;
  const std::size_t size = 4 * 1024 * 1024 + 3;
  PatternFile file(size);
  FileServer server;
  head_then_file(server, file.path, "HTTP/1.1 200 OK\r\nContent-Length: 4194307\r\n\r\n");
  server.length = size;
  ReaderState got;
  got.skip = server.before.size();
  transfer(reactor, server, got);
  REQUIRE(server.buffered_after_begin);
  // The region counts in buffer_size() as soon as it is queued; the kernel's 64 KiB send
  // buffer cannot have taken 4 MiB, so more than the head is still waiting.
  CHECK(*server.buffered_after_begin > server.before.size());
  REQUIRE(server.result);
  CHECK_FALSE(*server.result);
  CHECK(got.head == server.before);  // the head (alone before so large a region) leaves first, whole
  CHECK(got.received == size);
  CHECK_FALSE(got.corrupt);
}

TEST_CASE("FileSender without a length writes nothing in begin_transfer (the loop asks)") {
  Reactor reactor;
  const std::size_t size = 1024 * 1024;
  PatternFile file(size);
  FileServer server;
  head_then_file(server, file.path, "<head>");
  ReaderState got;
  got.skip = server.before.size();
  transfer(reactor, server, got);
  REQUIRE(server.buffered_after_begin);
  CHECK(*server.buffered_after_begin <= server.before.size());
  REQUIRE(server.result);
  CHECK_FALSE(*server.result);
  CHECK(got.head == "<head>");
  CHECK(got.received == size);
  CHECK_FALSE(got.corrupt);
}
