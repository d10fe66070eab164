// chat_server [--port N]: the classic line-based chat. The first line a client sends is
// its nickname; every later line goes to every other client as "<nick> line".
//
//   $ ./chat_server --port 8123 &
//   $ nc -C localhost 8123          (-C: lines end in "\r\n", as the protocol expects)
//   What's your name?
//   alice
//   Welcome, alice!
//
// Lines are limited to 1024 bytes (a longer one closes that client) and each client may
// hold at most 64 KiB of unsent chat before it is dropped as too slow.

#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "examples/cli.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "protocols/line_receiver.hpp"
#include "transports/tcp.hpp"

namespace chat_example {

class ChatFactory;

// One client: asks for a nickname, then relays its lines to everyone else.
class Chat : public torsion::LineReceiver {
 public:
  explicit Chat(ChatFactory& factory) : torsion::LineReceiver("\r\n", 1024), factory_(factory) {}
  void connection_made() override;
  void line_received(std::string_view line) override;
  void connection_lost(const torsion::Reason& reason) override;

 private:
  ChatFactory& factory_;
  std::string name_;  // empty until the client has chosen one
};

// Keeps the room: nickname -> client.
class ChatFactory : public torsion::Factory {
 public:
  std::unique_ptr<torsion::Protocol> build_protocol(const torsion::Address&) override {
    return std::make_unique<Chat>(*this);
  }
  std::map<std::string, Chat*, std::less<>> users;
};

// A client that lets this much chat pile up unread is dropped.
constexpr std::size_t kMaxBacklog = 64 * 1024;

void Chat::connection_made() { send_line("What's your name?"); }

void Chat::line_received(std::string_view line) {
  if (name_.empty()) {
    if (line.empty() || factory_.users.count(line) != 0) {
      send_line("Name taken, please choose another.");
      return;
    }
    name_ = line;
    factory_.users[name_] = this;
    send_line("Welcome, " + name_ + "!");
    return;
  }
  const std::string message = "<" + name_ + "> " + std::string(line);
  for (auto& [name, user] : factory_.users) {
    if (user == this) continue;
    if (user->transport().buffer_size() > kMaxBacklog) {
      user->transport().abort_connection();
      continue;
    }
    user->send_line(message);
  }
}

void Chat::connection_lost(const torsion::Reason&) {
  if (!name_.empty()) factory_.users.erase(name_);
}

}  // namespace chat_example

#ifndef TORSION_EXAMPLE_NO_MAIN
int example_main(int argc, char** argv) {
  int port = 8123;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--port" && i + 1 < argc) {
      port = torsion::examples::port_arg(argv[++i]);
    } else {
      std::cerr << "usage: chat_server [--port N]\n";
      return 2;
    }
  }
  torsion::Reactor reactor;
  chat_example::ChatFactory factory;
  auto listening = torsion::listen_tcp(reactor, port, factory);
  std::cout << "chat server on port " << listening->port() << std::endl;
  reactor.run();
  return 0;
}

int main(int argc, char** argv) {
  return torsion::examples::run_main(argc, argv, example_main);
}
#endif
