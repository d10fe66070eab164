// kv_server [--port N] [--interface ADDR]: a Redis-compatible key-value server (RESP2:
// PING, ECHO, SET with EX/PX/NX/XX, GET, DEL, INCR, EXISTS, MGET), written the idiomatic
// way on LineReceiver: header lines in line mode, bulk arguments with expect_raw. Errors
// are worded as redis-server 7.0 words them; keys expire on reactor timers.
//
//   $ ./kv_server --port 6380 &
//   listening on 127.0.0.1:6380
//   $ redis-cli -p 6380 set greeting hello ex 60
//   OK
//   $ redis-cli -p 6380 get greeting
//   "hello"
//
// Limits (examples/resp.hpp): an inline request or header line of 64 KiB, a bulk argument
// of 64 MiB, 1M arguments and 64 MiB per request; beyond them the client gets
// redis-server's "-ERR Protocol error: ..." and is closed.

#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>

#include "examples/cli.hpp"
#include "examples/kv_server.hpp"
#include "framework/reactor.hpp"
#include "transports/tcp.hpp"

int example_main(int argc, char** argv) {
  int port = 6380;
  torsion::TcpListenOptions options;
  options.interface = "127.0.0.1";
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--port" && i + 1 < argc) {
      port = torsion::examples::port_arg(argv[++i]);
    } else if (arg == "--interface" && i + 1 < argc) {
      options.interface = argv[++i];
    } else {
      std::cerr << "usage: kv_server [--port N] [--interface ADDR]\n";
      return 2;
    }
  }
  torsion::Reactor reactor;
  torsion::examples::KvFactory factory(reactor);
  auto listening = torsion::listen_tcp(reactor, port, factory, options);
  std::cout << "listening on " << options.interface << ":" << listening->port() << std::endl;
  reactor.run();
  return 0;
}

int main(int argc, char** argv) {
  return torsion::examples::run_main(argc, argv, example_main);
}
