#pragma once
// Debian's haproxy as a real peer for the PROXY protocol tests: a torsion backend behind
// ProxyProtocolFactory that remembers what each connection said, and an haproxy process
// started on 127.0.0.1 in front of it, stopped by its PID.
//
// haproxy cannot bind port 0, so its port is picked by binding port 0 here, closing, and
// passing the number; if haproxy then fails to bind it (another process took it) it is
// started again with a new one. It is ready when its first health check reaches the
// backend: haproxy binds its listeners before its loop runs the checks.

#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "protocols/proxy_protocol.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/wait.hpp"
#include "transports/process.hpp"
#include "transports/tcp.hpp"

namespace torsion::test {

inline constexpr const char* kHaproxy = "/usr/sbin/haproxy";

// True when Debian's haproxy is installed; else prints why the caller skips.
inline bool have_haproxy() {
  if (std::filesystem::exists(kHaproxy)) return true;
  MESSAGE("skipped: haproxy is not installed (apt-get install haproxy)");
  return false;
}

// What the backend saw of one connection.
struct Seen {
  ProxyHeader header;  // what proxy_header(transport()) gave
  Address peer, host;  // get_peer() and get_host()
  std::string received;
  bool lost = false;
  Transport* transport = nullptr;  // while !lost
};

// An echo server on 127.0.0.1:0 behind ProxyProtocolFactory.
struct ProxiedBackend {
  class Echo : public Protocol {
   public:
    explicit Echo(std::deque<Seen>& all) : seen_(all.emplace_back()) {}
    void connection_made() override {
      seen_.transport = &transport();
      seen_.peer = transport().get_peer();
      seen_.host = transport().get_host();
      const ProxyHeader* h = proxy_header(transport());
      REQUIRE(h != nullptr);  // ProxyProtocolFactory builds protocols only after a header
      seen_.header = *h;
    }
    void data_received(std::string_view data) override {
      seen_.received.append(data);
      transport().write(data);
    }
    void connection_lost(const Reason&) override {
      seen_.lost = true;
      seen_.transport = nullptr;
    }

   private:
    Seen& seen_;
  };

  std::deque<Seen> seen;
  FunctionFactory<Factory> inner{[this](const Address&) { return std::make_unique<Echo>(seen); }};
  ProxyProtocolFactory proxy{inner};
  std::shared_ptr<ListeningPort> port;

  explicit ProxiedBackend(Reactor& reactor) : port(listen_tcp(reactor, 0, proxy, loopback())) {}

  // The connections that carried a client (not haproxy's health checks: LOCAL headers).
  std::vector<Seen*> clients() {
    std::vector<Seen*> out;
    for (Seen& s : seen)
      if (!s.header.local) out.push_back(&s);
    return out;
  }
};

// One haproxy process. `frontend` and `server` are the options of its bind line and of
// its one server line; the server is `backend` with health checks that send the PROXY
// header too (check-send-proxy), the readiness signal.
class Haproxy {
 public:
  struct Output : ProcessProtocol {
    std::string out, err;
    std::optional<ExitStatus> status;
    void out_received(std::string_view d) override { out.append(d); }
    void err_received(std::string_view d) override { err.append(d); }
    void process_ended(const ExitStatus& s) override { status = s; }
  };

  Haproxy(Reactor& reactor, ProxiedBackend& backend, const std::string& frontend,
          const std::string& server)
      : reactor_(reactor), running_{reactor, nullptr, nullptr} {
    dir_ = std::filesystem::temp_directory_path() /
           ("torsion_haproxy_" + std::to_string(::getpid()) + "_" + std::to_string(++serial()));
    std::filesystem::create_directories(dir_);
    for (int attempt = 1;; ++attempt) {
      port_ = recently_free_port();
      const std::filesystem::path config = dir_ / "haproxy.cfg";
      std::ofstream(config) << "global\n  maxconn 64\n  nbthread 1\n"
                            << "defaults\n  mode tcp\n  timeout connect 5s\n"
                            << "  timeout client 30s\n  timeout server 30s\n"
                            << "  unique-id-format %ci:%cp\n"
                            << "frontend fe\n  bind 127.0.0.1:" << port_ << ' ' << frontend
                            << "\n  default_backend be\n"
                            << "backend be\n  server s1 127.0.0.1:" << backend.port->port() << ' '
                            << server << " check check-send-proxy inter 60s\n";
      running_.output = std::make_unique<Output>();
      const std::size_t before = backend.seen.size();
      running_.process =
          spawn_process(reactor, *running_.output, {kHaproxy, "-db", "-f", config.string()});
      Output& o = *running_.output;
      INFO(o.err);
      REQUIRE(wait_for(reactor, [&] {
        return backend.seen.size() > before || o.status.has_value();
      }, "haproxy's first health check"));
      if (!o.status) break;  // up
      const bool taken = o.err.find("cannot bind socket") != std::string::npos;
      REQUIRE_MESSAGE(taken, "haproxy exited: " << o.err);
      REQUIRE_MESSAGE(attempt < 5, "haproxy found no free port in 5 attempts");
      MESSAGE("port " << port_ << " was taken before haproxy bound it; trying another");
    }
    const Seen& check = backend.seen.back();
    CHECK(check.header.local);  // a health check says LOCAL: no client behind it
  }

  ~Haproxy() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  Haproxy(const Haproxy&) = delete;
  Haproxy& operator=(const Haproxy&) = delete;

  int port() const noexcept { return port_; }
  // What haproxy wrote to stderr (warnings, alerts).
  const std::string& errors() const noexcept { return running_.output->err; }
  const std::filesystem::path& dir() const noexcept { return dir_; }

  // Stops haproxy (SIGTERM to its PID) and REQUIREs that it ended.
  void stop() {
    REQUIRE(running_.process->pid() > 0);
    running_.process->signal_process(SIGTERM);
    REQUIRE(wait_for(reactor_, [&] { return running_.output->status.has_value(); },
                     "haproxy's exit"));
  }

 private:
  static int& serial() {
    static int n = 0;
    return n;
  }
  // The process, stopped when this goes, also when the constructor fails half-way.
  struct Running {
    Reactor& reactor;
    std::unique_ptr<Output> output;
    std::shared_ptr<ProcessTransport> process;
    ~Running() {
      if (!process || output->status) return;
      process->signal_process(SIGTERM);
      if (!reactor.run_until([&] { return output->status.has_value(); }, kDeadline))
        process->signal_process(SIGKILL);
      reactor.run_until([&] { return output->status.has_value(); }, kDeadline);
    }
  };
  Reactor& reactor_;
  std::filesystem::path dir_;
  int port_ = 0;
  Running running_;
};

}  // namespace torsion::test
