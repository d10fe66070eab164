// torsion_echo [--port N] [--sink] [--threads N]: the torsion server the benchmarks measure.
// Echo is what a user writes: data_received -> transport().write(data). With --sink it
// discards what it reads and answers end of file with the decimal count of bytes received
// (loadgen's sink mode checks it). With --threads N it serves the port from a ReactorPool of
// N reactors (one SO_REUSEPORT socket each); on SIGINT or SIGTERM it stops the pool and
// prints how many connections each reactor accepted, on stderr.
// Prints "listening on 127.0.0.1:PORT" first, like examples/echo_server.

#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "framework/reactor_pool.hpp"
#include "transports/tcp.hpp"
#include "transports/tcp_pool.hpp"

namespace {

class Echo final : public torsion::Protocol {
  void data_received(std::string_view data) override { transport().write(data); }
};

class Sink final : public torsion::Protocol {
  void data_received(std::string_view data) override { count_ += data.size(); }
  bool eof_received() override {
    transport().write(std::to_string(count_));
    return false;  // close once the count is sent
  }
  std::size_t count_ = 0;
};

// Builds Echo or Sink and counts the connections of one reactor.
class CountingFactory final : public torsion::Factory {
 public:
  explicit CountingFactory(bool sink) : sink_(sink) {}
  std::unique_ptr<torsion::Protocol> build_protocol(const torsion::Address&) override {
    ++built_;
    if (sink_) return std::make_unique<Sink>();
    return std::make_unique<Echo>();
  }
  std::size_t built() const { return built_; }

 private:
  bool sink_;
  std::size_t built_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  bool sink = false;
  std::size_t threads = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      port = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--sink") == 0) {
      sink = true;
    } else if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
      threads = std::strtoul(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: %s [--port N] [--sink] [--threads N]\n", argv[0]);
      return 2;
    }
  }
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  torsion::TcpListenOptions options;
  options.interface = "127.0.0.1";
  try {
    if (threads == 0) {
      torsion::Reactor reactor;
      CountingFactory factory(sink);
      auto listening = torsion::listen_tcp(reactor, port, factory, options);
      std::printf("listening on 127.0.0.1:%u\n", listening->port());
      std::fflush(stdout);
      reactor.run();
      return 0;
    }
    // Block the stop signals in every thread (the pool's threads inherit the mask) and
    // wait for them here.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    torsion::ReactorPool pool(threads);
    std::vector<CountingFactory> factories(threads, CountingFactory(sink));
    auto ports = torsion::listen_tcp_pool(
        pool, port, [&](std::size_t i) -> torsion::Factory& { return factories[i]; }, options);
    std::printf("listening on 127.0.0.1:%u\n", ports.front()->port());
    std::fflush(stdout);
    pool.start();
    int sig = 0;
    sigwait(&stop_signals, &sig);
    pool.stop();
    pool.join();
    std::string counts;
    for (auto& f : factories) {
      if (!counts.empty()) counts += '/';
      counts += std::to_string(f.built());
    }
    std::fprintf(stderr, "connections per reactor: %s\n", counts.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "torsion_echo: %s\n", e.what());
    return 1;
  }
}
