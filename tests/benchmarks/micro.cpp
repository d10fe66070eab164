// Micro-benchmarks (Google Benchmark): timers, call_soon and the small-write path, each
// next to the raw-Asio code doing the same work.
//
// Memory per pending timer, three ways, all divided by the 1M timers:
//   new_B    bytes handed out by a counting global operator new (malloc_usable_size), live
//            once all are scheduled (the peak: nothing has fired or been cancelled yet);
//   peak_B   the counting allocator's high-water mark during scheduling, over its level
//            before (includes the heap vector's transient regrowth, if it peaks then);
//   heap_B   mallinfo2's heap in use (adds malloc's own chunk headers) once all are
//            scheduled.
// cb_B is the callback's own object that each timer stores: for torsion the
// std::function<void()> (32 bytes; this benchmark's lambda captures one reference, 8
// bytes, which std::function keeps inside itself, so no separate allocation), for Asio the
// bare lambda (8 bytes) inside its wait operation. beyond_cb_B = heap_B - cb_B is the
// figure the target (at most 64 bytes beyond the callback) is about.
// The handles the program keeps (a DelayedCall, or the asio::steady_timer object itself)
// are in a vector reserved beforehand, so they are not counted: their size is handle_B.

#include <malloc.h>

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>
#include <atomic>
#include <benchmark/benchmark.h>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "framework/delayed_call.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "framework/testing/manual_clock.hpp"
#include "transports/tcp.hpp"

// --- counting allocator ---------------------------------------------------------------

namespace {
std::atomic<long long> g_live_bytes{0};
std::atomic<long long> g_allocs{0};
std::atomic<long long> g_peak_bytes{0};

void* counted_alloc(std::size_t n) {
  void* p = std::malloc(n == 0 ? 1 : n);
  if (!p) throw std::bad_alloc();
  const long long live =
      g_live_bytes.fetch_add(static_cast<long long>(malloc_usable_size(p)), std::memory_order_relaxed) +
      static_cast<long long>(malloc_usable_size(p));
  long long peak = g_peak_bytes.load(std::memory_order_relaxed);
  while (live > peak && !g_peak_bytes.compare_exchange_weak(peak, live, std::memory_order_relaxed)) {
  }
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  return p;
}

void counted_free(void* p) noexcept {
  if (!p) return;
  g_live_bytes.fetch_sub(static_cast<long long>(malloc_usable_size(p)), std::memory_order_relaxed);
  std::free(p);
}

// Resets the high-water mark to the current level (call before the region measured).
void reset_peak() { g_peak_bytes.store(g_live_bytes.load()); }

struct MemSnapshot {
  long long live = g_live_bytes.load();
  long long peak = g_peak_bytes.load();
  long long allocs = g_allocs.load();
  long long heap = static_cast<long long>(mallinfo2().uordblks);
};
}  // namespace

void* operator new(std::size_t n) { return counted_alloc(n); }
void* operator new[](std::size_t n) { return counted_alloc(n); }
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p); }

namespace {

constexpr std::size_t kTimers = 1000000;

// Deadlines spread over 1 ms, so that the heap is exercised and the real-time runs wait
// at most 1 ms.
double delay_of(std::size_t i) { return static_cast<double>(i % 1000) * 1e-6; }

void report_memory(benchmark::State& state, const MemSnapshot& before, const MemSnapshot& after,
                   std::size_t callback_bytes, std::size_t handle_bytes) {
  const double n = static_cast<double>(kTimers);
  const double heap = static_cast<double>(after.heap - before.heap) / n;
  state.counters["new_B"] = static_cast<double>(after.live - before.live) / n;
  state.counters["peak_B"] = static_cast<double>(after.peak - before.live) / n;
  state.counters["heap_B"] = heap;
  state.counters["cb_B"] = static_cast<double>(callback_bytes);
  state.counters["beyond_cb_B"] = heap - static_cast<double>(callback_bytes);
  state.counters["allocs"] = static_cast<double>(after.allocs - before.allocs) / n;
  state.counters["handle_B"] = static_cast<double>(handle_bytes);
}

// --- 1M timers: schedule, cancel every other one, fire the rest ------------------------

void BM_Timers_Torsion_ManualClock(benchmark::State& state) {
  for (auto _ : state) {
    torsion::testing::ManualClock clock;
    std::vector<torsion::DelayedCall> handles;
    handles.reserve(kTimers);
    std::size_t fired = 0;
    reset_peak();
    const MemSnapshot before;
    for (std::size_t i = 0; i < kTimers; ++i)
      handles.push_back(clock.call_later(delay_of(i), [&fired] { ++fired; }));
    const MemSnapshot after;
    for (std::size_t i = 0; i < kTimers; i += 2) handles[i].cancel();
    clock.advance(1.0);
    if (fired != kTimers / 2) state.SkipWithError("wrong number of timers fired");
    report_memory(state, before, after, sizeof(std::function<void()>), sizeof(torsion::DelayedCall));
  }
  state.SetItemsProcessed(state.iterations() * static_cast<long long>(kTimers));
}
BENCHMARK(BM_Timers_Torsion_ManualClock)->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_Timers_Torsion_Reactor(benchmark::State& state) {
  for (auto _ : state) {
    torsion::Reactor reactor;
    std::vector<torsion::DelayedCall> handles;
    handles.reserve(kTimers);
    std::size_t fired = 0;
    reset_peak();
    const MemSnapshot before;
    for (std::size_t i = 0; i < kTimers; ++i)
      handles.push_back(reactor.call_later(delay_of(i), [&fired] { ++fired; }));
    const MemSnapshot after;
    for (std::size_t i = 0; i < kTimers; i += 2) handles[i].cancel();
    reactor.run_until([&] { return fired == kTimers / 2; }, 30);
    if (fired != kTimers / 2) state.SkipWithError("wrong number of timers fired");
    report_memory(state, before, after, sizeof(std::function<void()>), sizeof(torsion::DelayedCall));
  }
  state.SetItemsProcessed(state.iterations() * static_cast<long long>(kTimers));
}
BENCHMARK(BM_Timers_Torsion_Reactor)->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_Timers_Asio_SteadyTimer(benchmark::State& state) {
  for (auto _ : state) {
    asio::io_context io(1);
    std::vector<asio::steady_timer> timers;
    timers.reserve(kTimers);
    std::size_t fired = 0;
    auto on_fire = [&fired](const std::error_code& ec) {
      if (!ec) ++fired;
    };
    reset_peak();
    const MemSnapshot before;
    for (std::size_t i = 0; i < kTimers; ++i) {
      timers.emplace_back(io, std::chrono::microseconds(i % 1000));
      timers.back().async_wait(on_fire);
    }
    const MemSnapshot after;
    for (std::size_t i = 0; i < kTimers; i += 2) timers[i].cancel();
    io.run();
    if (fired != kTimers / 2) state.SkipWithError("wrong number of timers fired");
    report_memory(state, before, after, sizeof(on_fire), sizeof(asio::steady_timer));
  }
  state.SetItemsProcessed(state.iterations() * static_cast<long long>(kTimers));
}
BENCHMARK(BM_Timers_Asio_SteadyTimer)->Unit(benchmark::kMillisecond)->Iterations(3);

// --- call_soon throughput ---------------------------------------------------------------

constexpr std::size_t kBatch = 10000;

void BM_CallSoon_Torsion(benchmark::State& state) {
  torsion::Reactor reactor;
  std::size_t ran = 0;
  for (auto _ : state) {
    ran = 0;
    for (std::size_t i = 0; i < kBatch; ++i) reactor.call_soon([&ran] { ++ran; });
    reactor.run_until([&] { return ran == kBatch; }, 10);
    if (ran != kBatch) state.SkipWithError("call_soon callbacks did not all run");
  }
  state.SetItemsProcessed(state.iterations() * static_cast<long long>(kBatch));
}
BENCHMARK(BM_CallSoon_Torsion);

void BM_Post_Asio(benchmark::State& state) {
  asio::io_context io(1);
  std::size_t ran = 0;
  for (auto _ : state) {
    ran = 0;
    for (std::size_t i = 0; i < kBatch; ++i) asio::post(io, [&ran] { ++ran; });
    io.restart();
    io.run();
    if (ran != kBatch) state.SkipWithError("posted handlers did not all run");
  }
  state.SetItemsProcessed(state.iterations() * static_cast<long long>(kBatch));
}
BENCHMARK(BM_Post_Asio);

// --- many small writes ----------------------------------------------------------------
// 1000 writes of 32 bytes on a connected TCP transport, then the peer reads all 32,000
// bytes. The kernel takes every write whole here, so what is measured is the per-write
// cost of the write path (and whether it coalesces).

constexpr std::size_t kWrites = 1000;
constexpr std::size_t kWriteSize = 32;
using asio::ip::tcp;

class Holder final : public torsion::Protocol {
 public:
  explicit Holder(Holder** slot) : slot_(slot) {}
  void connection_made() override { *slot_ = this; }
  void connection_lost(const torsion::Reason&) override { *slot_ = nullptr; }

 private:
  Holder** slot_;
};

struct TorsionPair {
  torsion::Reactor reactor;
  Holder* server = nullptr;
  torsion::FunctionFactory<> factory{
      [this](const torsion::Address&) { return std::make_unique<Holder>(&server); }};
  std::shared_ptr<torsion::ListeningPort> port;
  asio::io_context client_io{1};
  tcp::socket client{client_io};

  TorsionPair() {
    torsion::TcpListenOptions options;
    options.interface = "127.0.0.1";
    port = torsion::listen_tcp(reactor, 0, factory, options);
    client.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port->port()));
    reactor.run_until([this] { return server != nullptr; }, 10);
  }
};

// Runs `reactor` until `client` has bytes to read, reads them, and again until `in` is full.
void drive_and_read(torsion::Reactor& reactor, tcp::socket& client, std::vector<char>& in) {
  std::size_t got = 0;
  while (got < in.size()) {
    reactor.run_until([&] { return client.available() > 0; }, 10);
    got += client.read_some(asio::buffer(in.data() + got, in.size() - got));
  }
}

void BM_SmallWrites_Torsion_Write(benchmark::State& state) {
  TorsionPair p;
  if (!p.server) {
    state.SkipWithError("no connection");
    return;
  }
  const std::string chunk(kWriteSize, 'x');
  std::vector<char> in(kWrites * kWriteSize);
  for (auto _ : state) {
    for (std::size_t i = 0; i < kWrites; ++i) p.server->transport().write(std::string_view(chunk));
    asio::read(p.client, asio::buffer(in));
  }
  state.SetBytesProcessed(state.iterations() * static_cast<long long>(kWrites * kWriteSize));
  state.SetItemsProcessed(state.iterations() * static_cast<long long>(kWrites));
}
BENCHMARK(BM_SmallWrites_Torsion_Write);

void BM_SmallWrites_Torsion_WriteSequence(benchmark::State& state) {
  TorsionPair p;
  if (!p.server) {
    state.SkipWithError("no connection");
    return;
  }
  const std::string chunk(kWriteSize, 'x');
  std::vector<std::string_view> parts(kWrites, std::string_view(chunk));
  std::vector<char> in(kWrites * kWriteSize);
  for (auto _ : state) {
    p.server->transport().write_sequence(parts);
    asio::read(p.client, asio::buffer(in));
  }
  state.SetBytesProcessed(state.iterations() * static_cast<long long>(kWrites * kWriteSize));
  state.SetItemsProcessed(state.iterations() * static_cast<long long>(kWrites));
}
BENCHMARK(BM_SmallWrites_Torsion_WriteSequence);

// The same 1000 writes made from inside data_received (a request answered piecewise):
// what a transport can coalesce without the protocol's help.
class Burst final : public torsion::Protocol {
 public:
  explicit Burst(Burst** slot) : slot_(slot) {}
  void connection_made() override { *slot_ = this; }
  void connection_lost(const torsion::Reason&) override { *slot_ = nullptr; }
  void data_received(std::string_view) override {
    for (std::size_t i = 0; i < kWrites; ++i) transport().write(std::string_view(chunk_));
  }

 private:
  Burst** slot_;
  std::string chunk_ = std::string(kWriteSize, 'x');
};

void BM_SmallWrites_Torsion_InDataReceived(benchmark::State& state) {
  torsion::Reactor reactor;
  Burst* server = nullptr;
  torsion::FunctionFactory<> factory(
      [&server](const torsion::Address&) { return std::make_unique<Burst>(&server); });
  torsion::TcpListenOptions options;
  options.interface = "127.0.0.1";
  auto port = torsion::listen_tcp(reactor, 0, factory, options);
  asio::io_context client_io(1);
  tcp::socket client(client_io);
  client.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port->port()));
  client.set_option(tcp::no_delay(true));
  reactor.run_until([&] { return server != nullptr; }, 10);
  if (!server) {
    state.SkipWithError("no connection");
    return;
  }
  std::vector<char> in(kWrites * kWriteSize);
  for (auto _ : state) {
    asio::write(client, asio::buffer("?", 1));
    // Drive the server until it has read the request and answered, then read the answer.
    drive_and_read(reactor, client, in);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<long long>(kWrites * kWriteSize));
  state.SetItemsProcessed(state.iterations() * static_cast<long long>(kWrites));
}
BENCHMARK(BM_SmallWrites_Torsion_InDataReceived);

// The same 1000 writes made from a call_soon callback: outside any data_received, as from
// a timer, a LoopingCall, a producer's resume_producing or a Deferred's callback.
void BM_SmallWrites_Torsion_InCallSoon(benchmark::State& state) {
  TorsionPair p;
  if (!p.server) {
    state.SkipWithError("no connection");
    return;
  }
  const std::string chunk(kWriteSize, 'x');
  std::vector<char> in(kWrites * kWriteSize);
  for (auto _ : state) {
    p.reactor.call_soon([&] {
      for (std::size_t i = 0; i < kWrites; ++i)
        p.server->transport().write(std::string_view(chunk));
    });
    // Drive the server until the callback has run and what it wrote has left, then read.
    drive_and_read(p.reactor, p.client, in);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<long long>(kWrites * kWriteSize));
  state.SetItemsProcessed(state.iterations() * static_cast<long long>(kWrites));
}
BENCHMARK(BM_SmallWrites_Torsion_InCallSoon);

struct AsioPair {
  asio::io_context io{1};
  tcp::acceptor acceptor{io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  tcp::socket client{io};
  tcp::socket server{io};
  AsioPair() {
    client.connect(acceptor.local_endpoint());
    acceptor.accept(server);
    server.set_option(tcp::no_delay(true));
    server.non_blocking(true);
  }
};

// What a hand-written Asio program does with one write per message: one send each.
void BM_SmallWrites_Asio_WriteSome(benchmark::State& state) {
  AsioPair p;
  const std::string chunk(kWriteSize, 'x');
  std::vector<char> in(kWrites * kWriteSize);
  for (auto _ : state) {
    for (std::size_t i = 0; i < kWrites; ++i) p.server.write_some(asio::buffer(chunk));
    asio::read(p.client, asio::buffer(in));
  }
  state.SetBytesProcessed(state.iterations() * static_cast<long long>(kWrites * kWriteSize));
  state.SetItemsProcessed(state.iterations() * static_cast<long long>(kWrites));
}
BENCHMARK(BM_SmallWrites_Asio_WriteSome);

// The best case: the program coalesces into its own buffer and sends once.
void BM_SmallWrites_Asio_Coalesced(benchmark::State& state) {
  AsioPair p;
  const std::string chunk(kWriteSize, 'x');
  std::string out;
  std::vector<char> in(kWrites * kWriteSize);
  for (auto _ : state) {
    out.clear();
    for (std::size_t i = 0; i < kWrites; ++i) out.append(chunk);
    asio::write(p.server, asio::buffer(out));
    asio::read(p.client, asio::buffer(in));
  }
  state.SetBytesProcessed(state.iterations() * static_cast<long long>(kWrites * kWriteSize));
  state.SetItemsProcessed(state.iterations() * static_cast<long long>(kWrites));
}
BENCHMARK(BM_SmallWrites_Asio_Coalesced);

}  // namespace

BENCHMARK_MAIN();
