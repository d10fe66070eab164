#pragma once
// The openssl command-line tool as a TLS peer for interop tests: s_server and s_client run
// as child processes (spawn_process) with the certificates of a TestPki, on 127.0.0.1.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/support/recording.hpp"
#include "tests/support/tls_certs.hpp"
#include "transports/process.hpp"

namespace torsion::test {

// `openssl s_server -rev`: learns the kernel-picked port from its "ACCEPT 127.0.0.1:PORT"
// line and keeps its output and exit status.
struct OpenSslServer : ProcessProtocol {
  std::string out;
  std::optional<ExitStatus> status;
  int port = 0;  // 0 until s_server has said where it listens
  void out_received(std::string_view d) override {
    out.append(d);
    const auto at = out.find("ACCEPT 127.0.0.1:");
    if (port == 0 && at != std::string::npos && out.find('\n', at) != std::string::npos)
      port = std::stoi(out.substr(at + 17));
  }
  void process_ended(const ExitStatus& s) override { status = s; }
};

// The command line of an s_server on 127.0.0.1, port 0, presenting pki's localhost
// certificate, for one connection, answering each line reversed; `extra` options follow.
inline std::vector<std::string> s_server_command(const TestPki& pki,
                                                 std::vector<std::string> extra = {}) {
  std::vector<std::string> command{"openssl", "s_server", "-accept", "127.0.0.1:0",
                                   "-cert",   pki.cert_file, "-key", pki.key_file,
                                   "-naccept", "1", "-rev"};
  for (std::string& e : extra) command.push_back(std::move(e));
  return command;
}

// Sets `client` up to send "torsion\n" and to close once s_server -rev answers "noisrot".
inline void reverse_ping(RecordingClientFactory& client) {
  client.setup = [](Record& r) {
    r.on_made = [](Record& rr) { rr.transport->write("torsion\n"); };
    r.on_data = [](Record& rr, std::string_view) {
      if (rr.received.find("noisrot") != std::string::npos) rr.transport->lose_connection();
    };
  };
}

// `openssl s_client`: keeps its output and exit status, and closes its stdin once the
// output contains `close_after` (never when that is empty).
struct OpenSslClient : ProcessProtocol {
  explicit OpenSslClient(std::string close_after = "") : close_after_(std::move(close_after)) {}
  std::string out;
  std::optional<ExitStatus> status;
  void out_received(std::string_view d) override {
    out.append(d);
    if (!close_after_.empty() && out.find(close_after_) != std::string::npos)
      transport().close_stdin();
  }
  void process_ended(const ExitStatus& s) override { status = s; }

 private:
  std::string close_after_;
};

// The command line of an s_client that connects to 127.0.0.1:port, verifies the server
// as "localhost" against pki's CA, and keeps reading after its stdin ends; `extra` options
// follow.
inline std::vector<std::string> s_client_command(const TestPki& pki, int port,
                                                 std::vector<std::string> extra = {}) {
  std::vector<std::string> command{
      "openssl", "s_client",    "-connect",   "127.0.0.1:" + std::to_string(port),
      "-CAfile", pki.ca_file,   "-servername", "localhost",
      "-verify_return_error", "-quiet", "-no_ign_eof"};
  for (std::string& e : extra) command.push_back(std::move(e));
  return command;
}

}  // namespace torsion::test
