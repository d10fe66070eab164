#include <array>
#include <memory>
#include <string_view>

#include "docs/snippets/snippets.hpp"
#include "framework/protocol.hpp"
#include "transports/tcp.hpp"

namespace docs {

// [snippet:writes]
void three_ways_to_write(torsion::Transport& t, std::string big_payload) {
  t.write("copied, or sent at once");     // a view: copied only if the kernel is full
  t.write(std::move(big_payload));        // moved in: never copied
  std::array<std::string_view, 3> parts{"HTTP/1.1 200 OK\r\n", "Content-Length: 0\r\n", "\r\n"};
  t.write_sequence(parts);                // gathered into one send
}
// [end]

namespace {

// [snippet:half-close-server]
// Reads a whole request (until the client's end-of-file), then answers and closes.
class Upcase : public torsion::Protocol {
 public:
  void data_received(std::string_view data) override { request_.append(data); }
  bool eof_received() override {
    for (char& c : request_) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
    transport().write(request_);
    transport().lose_connection();
    return true;  // keep the connection open for writing: we still have to answer
  }

 private:
  std::string request_;
};
// [end]

// [snippet:half-close-client]
class Ask : public torsion::Protocol {
 public:
  explicit Ask(std::string& answer) : answer_(answer) {}
  void connection_made() override {
    transport().write("hello, ");
    transport().write("torsion");
    transport().lose_write_connection();  // FIN once flushed: "that was the request"
  }
  void data_received(std::string_view data) override { answer_.append(data); }

 private:
  std::string& answer_;
};
// [end]

}  // namespace

std::string request_with_half_close(torsion::Reactor& reactor) {
  std::string answer;
  bool done = false;
  auto server = torsion::make_factory<Upcase>();
  // [snippet:listen-options]
  torsion::TcpListenOptions options;
  options.interface = "127.0.0.1";  // "" = every IPv4 interface, "::" = every IPv6 one
  options.backlog = 128;
  options.reuse_port = false;       // true: several reactors share the port
  auto port = torsion::listen_tcp(reactor, 0, server, options);
  // [end]
  torsion::FunctionFactory<torsion::ClientFactory> client(
      [&](const torsion::Address&) { return std::make_unique<Ask>(answer); });
  // [snippet:connect-options]
  torsion::TcpConnectOptions connect_options;
  connect_options.timeout = 5;  // seconds for lookup + connect; error::timed_out after
  auto connector = torsion::connect_tcp(reactor, "127.0.0.1", port->port(), client,
                                        connect_options);
  // [end]
  reactor.run_until(
      [&] {
        done = answer.size() == 14 && reactor.connection_count() == 0;
        return done;
      },
      10);
  return answer;
}

}  // namespace docs
