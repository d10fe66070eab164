// Hashing files in a thread pool while the reactor keeps serving.
//
//   thread_pool [--threads N] [--port P] file...
//
// Each file is hashed (64-bit FNV-1a) with defer_to_thread on the pool's workers; the
// results come back to the reactor thread as Deferreds, gathered in input order. Meanwhile
// the reactor serves an echo service on 127.0.0.1:P (default: a free port) and a
// LoopingCall reports progress, showing the loop never blocks on disk or CPU work. When
// every file is done the reactor shuts down gracefully. With no file, it hashes its own
// executable.
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "examples/cli.hpp"
#include "framework/deferred.hpp"
#include "framework/looping_call.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "framework/thread_pool.hpp"
#include "transports/tcp.hpp"

using namespace torsion;

// Runs on a worker thread: touches nothing but its arguments.
std::uint64_t fnv1a_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::uint64_t hash = 14695981039346656037ull;
  std::vector<char> buffer(64 * 1024);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    for (std::streamsize i = 0; i < in.gcount(); ++i) {
      hash ^= static_cast<unsigned char>(buffer[static_cast<std::size_t>(i)]);
      hash *= 1099511628211ull;
    }
  }
  if (in.bad()) throw std::runtime_error("read error on " + path);
  return hash;
}

class Echo : public Protocol {
  void data_received(std::string_view data) override { transport().write(data); }
};

int example_main(int argc, char** argv) {
  std::size_t threads = ThreadPool::default_size();
  int port = 0;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
      threads = static_cast<std::size_t>(std::atoi(argv[++i]));
    else if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc)
      port = torsion::examples::port_arg(argv[++i]);
    else
      files.emplace_back(argv[i]);
  }
  if (files.empty()) files.emplace_back(argv[0]);

  Reactor reactor;
  ThreadPool pool(reactor, threads);
  // Before the reactor's own shutdown work: let running hashes finish, drop queued ones.
  reactor.add_shutdown_trigger(ShutdownPhase::before, [&] { pool.stop(ShutdownMode::cancel); });

  auto echo = make_factory<Echo>();
  TcpListenOptions options;
  options.interface = "127.0.0.1";
  auto listening = listen_tcp(reactor, port, echo, options);
  std::printf("echo service on 127.0.0.1:%d while hashing %zu file(s) on %zu thread(s)\n",
              listening->port(), files.size(), pool.size());

  std::size_t finished = 0;
  std::vector<Deferred<std::uint64_t>> hashes;
  for (const auto& path : files)
    hashes.push_back(pool.defer_to_thread([path] { return fnv1a_file(path); })
                         .add_both([&finished](Outcome<std::uint64_t> o) {
                           ++finished;  // on the reactor thread: no lock needed
                           return o;
                         }));

  LoopingCall progress(reactor, [&] {
    std::printf("  progress: %zu/%zu done, %zu busy, %zu queued, %zu connection(s)\n", finished,
                files.size(), pool.busy(), pool.queued(), reactor.connection_count());
  });
  progress.start(0.25);

  int status = 0;
  deferred_list(std::move(hashes)).add_callback([&](std::vector<Outcome<std::uint64_t>> all) {
    for (std::size_t i = 0; i < all.size(); ++i) {
      if (all[i].ok()) {
        std::printf("%016" PRIx64 "  %s\n", all[i].value(), files[i].c_str());
      } else {
        std::printf("error             %s: %s\n", files[i].c_str(),
                    describe_error(all[i].error()).c_str());
        status = 1;
      }
    }
    progress.stop();
    reactor.shutdown();
  });
  reactor.run();
  return status;
}

int main(int argc, char** argv) {
  return torsion::examples::run_main(argc, argv, example_main);
}
