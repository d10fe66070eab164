// Parsing throughput of the framing protocols, in bytes per second of input: each
// iteration feeds one 64 KiB read (as a busy transport delivers) holding many frames
// to a receiver over a StringTransport; the callbacks only count. Short and long frames.
//
//   meson setup build-bench -Dbenchmarks=true -Dbuildtype=release
//   ninja -C build-bench tests/benchmarks/protocols_bench &&
//   build-bench/tests/benchmarks/protocols_bench      (tests/benchmarks/run.sh runs it too)

#include <benchmark/benchmark.h>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "examples/resp.hpp"
#include "framework/testing/string_transport.hpp"
#include "protocols/line_receiver.hpp"
#include "protocols/netstring_receiver.hpp"
#include "protocols/prefixed_string_receiver.hpp"

using namespace torsion;

namespace {

constexpr std::size_t kRead = 64 * 1024;

struct Lines : LineReceiver {
  std::size_t count = 0;
  void line_received(std::string_view line) override { count += line.size() + 1; }
};
struct OnlyLines : LineOnlyReceiver {
  std::size_t count = 0;
  void line_received(std::string_view line) override { count += line.size() + 1; }
};
struct Int32 : Int32StringReceiver {
  std::size_t count = 0;
  void string_received(std::string_view s) override { count += s.size() + 1; }
};
struct Netstrings : NetstringReceiver {
  std::size_t count = 0;
  void string_received(std::string_view s) override { count += s.size() + 1; }
};

std::size_t bulk_length(std::string_view line) {
  std::size_t n = 0;
  std::from_chars(line.data() + 1, line.data() + line.size(), n);
  return n;
}

// A RESP-like stream: "$<n>" lines, each followed by n raw bytes and "\r\n", read with
// expect_raw (the bytes after the payload go with it).
struct Bulk : LineReceiver {
  std::size_t count = 0;
  void line_received(std::string_view line) override {
    count += line.size() + 2;
    if (!line.empty() && line[0] == '$') expect_raw(bulk_length(line) + 2);
  }
  void raw_data_received(std::string_view data) override { count += data.size(); }
};
// The same stream read Twisted's way: set_raw_mode, count, set_line_mode(rest).
struct BulkTwisted : LineReceiver {
  std::size_t count = 0;
  std::size_t wanted = 0;
  void line_received(std::string_view line) override {
    count += line.size() + 2;
    if (!line.empty() && line[0] == '$') {
      wanted = bulk_length(line) + 2;
      set_raw_mode();
    }
  }
  void raw_data_received(std::string_view data) override {
    const std::size_t take = std::min(data.size(), wanted);
    wanted -= take;
    count += take;
    if (wanted == 0) set_line_mode(data.substr(take));
  }
};
// Whole Redis requests (SET key value) through examples/resp.hpp, as kv_server reads them.
struct Requests : examples::resp::RequestReceiver {
  std::size_t count = 0;
  void command_received(std::span<std::string> args) override {
    for (const auto& a : args) count += a.size() + 1;
  }
};

// A read of about 64 KiB: whole frames of `payload` bytes each, built by `frame` (whole,
// so that every iteration starts at a frame boundary and parses the same work).
template <class Frame>
std::string read_of(std::size_t payload, Frame frame) {
  const std::string one = frame(std::string(payload, 'x'));
  std::string read;
  while (read.size() + one.size() <= kRead) read += one;
  return read;
}

template <class P, class Frame>
void run(benchmark::State& state, Frame frame) {
  const std::string read = read_of(static_cast<std::size_t>(state.range(0)), frame);
  testing::StringTransport t;
  P p;
  t.connect(p);
  for (auto _ : state) {
    p.data_received(read);
    benchmark::DoNotOptimize(p.count);
  }
  if (!t.connected() || p.count == 0) state.SkipWithError("the receiver rejected its input");
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(read.size()));
}

std::string crlf(std::string s) { return s + "\r\n"; }
std::string be32(std::string s) {
  const std::size_t n = s.size();
  return std::string{static_cast<char>(n >> 24), static_cast<char>((n >> 16) & 0xff),
                     static_cast<char>((n >> 8) & 0xff), static_cast<char>(n & 0xff)} +
         s;
}
std::string netstring(std::string s) { return std::to_string(s.size()) + ":" + s + ","; }
std::string bulk(std::string s) {
  std::string out = "$";  // piece by piece: g++ 12 at -O3 rejects "$" + string (-Wrestrict)
  out += std::to_string(s.size());
  out += "\r\n";
  out += s;
  out += "\r\n";
  return out;
}
std::string set_request(std::string s) {
  return "*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000042\r\n" + bulk(std::move(s));
}

void BM_LineReceiver(benchmark::State& s) { run<Lines>(s, crlf); }
void BM_LineOnlyReceiver(benchmark::State& s) { run<OnlyLines>(s, crlf); }
void BM_Int32StringReceiver(benchmark::State& s) { run<Int32>(s, be32); }
void BM_NetstringReceiver(benchmark::State& s) { run<Netstrings>(s, netstring); }
void BM_BulkExpectRaw(benchmark::State& s) { run<Bulk>(s, bulk); }
void BM_BulkSetLineMode(benchmark::State& s) { run<BulkTwisted>(s, bulk); }
void BM_RespSetRequests(benchmark::State& s) { run<Requests>(s, set_request); }

}  // namespace

// Short frames (16 bytes: chat lines, small RPCs) and long ones (1000 bytes).
BENCHMARK(BM_LineReceiver)->Arg(16)->Arg(1000);
BENCHMARK(BM_LineOnlyReceiver)->Arg(16)->Arg(1000);
BENCHMARK(BM_Int32StringReceiver)->Arg(16)->Arg(1000);
BENCHMARK(BM_NetstringReceiver)->Arg(16)->Arg(1000);
// Issue 17: lines alternating with 100-byte payloads through the line/raw switch.
BENCHMARK(BM_BulkExpectRaw)->Arg(100);
BENCHMARK(BM_BulkSetLineMode)->Arg(100);
BENCHMARK(BM_RespSetRequests)->Arg(100);

BENCHMARK_MAIN();
