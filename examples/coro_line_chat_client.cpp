// A line-based chat client as a coroutine: lines typed on stdin go to the server, lines
// from the server are printed, until either side ends.
//
//   coro_line_chat_client host port     talk to a line server (type, then Ctrl-D to end)
//   coro_line_chat_client --demo        run against a built-in "you said: ..." server,
//                                       with three scripted lines instead of stdin
//
// Stdin is read by a plain thread that hands each line to the reactor with
// call_from_thread (the reactor's one thread-safe entry). Lines from the server are read
// with Stream::read_line, whose limit protects the client from an endless line.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "examples/cli.hpp"
#include "framework/reactor.hpp"
#include "framework/stream.hpp"
#include "framework/task.hpp"
#include "transports/tcp.hpp"
#include "transports/connect_stream.hpp"

using namespace torsion;

constexpr std::size_t kMaxLine = 4096;

// Where the user's lines go: to the chat coroutine's hooks while it is connected, kept
// until then.
struct LineSource {
  std::function<void(std::string)> on_line;
  std::function<void()> on_end;
  std::vector<std::string> early;
  bool ended = false;
  void line(std::string text) {
    if (on_line)
      on_line(std::move(text));
    else
      early.push_back(std::move(text));
  }
  void end() {
    if (on_end)
      on_end();
    else
      ended = true;
  }
};

Task<void> chat(Reactor& reactor, std::string host, int port, LineSource& source) {
  Stream stream = co_await connect_stream(reactor, host, port);
  std::printf("* connected to %s\n", stream.transport().get_peer().to_string().c_str());
  source.on_line = [&stream](std::string line) { stream.write(line + "\n"); };
  source.on_end = [&stream] { stream.close_write(); };  // EOF to the server, keep reading
  struct Unhook {  // the callbacks refer to `stream`: unhook them however we leave
    LineSource& s;
    ~Unhook() { s.on_line = nullptr, s.on_end = nullptr; }
  } unhook{source};
  for (auto& line : source.early) source.on_line(line);
  source.early.clear();
  if (source.ended) source.on_end();
  try {
    while (auto line = co_await stream.read_line(kMaxLine)) std::printf("%s\n", line->c_str());
    std::printf("* the server closed the connection\n");
  } catch (const LineTooLongError&) {
    std::printf("* the server sent a line over %zu bytes: closing\n", kMaxLine);
  }
}

// Reads stdin on its own thread (detached: it may stay blocked in read at exit).
void read_stdin(Reactor& reactor, LineSource& source) {
  std::thread([&reactor, &source] {
    for (std::string line; std::getline(std::cin, line);)
      reactor.call_from_thread([&source, line] { source.line(line); });
    reactor.call_from_thread([&source] { source.end(); });
  }).detach();
}

// --- demo mode: a local server and scripted input -----------------------------------------
Task<void> you_said(Stream stream) {
  while (auto line = co_await stream.read_line(kMaxLine)) stream.write("you said: " + *line + "\n");
}

Task<void> type_lines(Reactor& reactor, LineSource& source, std::vector<std::string> lines) {
  for (auto& line : lines) {
    co_await sleep(reactor, 0.05);
    source.line(line);
  }
  source.end();
}

int example_main(int argc, char** argv) {
  Reactor reactor;
  LineSource source;
  StreamFactory demo_factory(reactor, [](Stream s) { you_said(std::move(s)); });
  std::shared_ptr<ListeningPort> demo_port;
  std::string host;
  int port = 0;
  const bool demo = argc == 2 && std::strcmp(argv[1], "--demo") == 0;
  if (demo) {
    TcpListenOptions options;
    options.interface = "127.0.0.1";
    demo_port = listen_tcp(reactor, 0, demo_factory, options);
    host = "127.0.0.1";
    port = demo_port->port();
  } else if (argc == 3) {
    host = argv[1];
    port = torsion::examples::port_arg(argv[2], 1);
  } else {
    std::fprintf(stderr, "usage: %s host port | --demo\n", argv[0]);
    return 2;
  }

  int status = 1;
  chat(reactor, host, port, source).deferred().add_both([&](Outcome<void> done) {
    if (done.ok())
      status = 0;
    else
      std::fprintf(stderr, "* %s\n", describe_error(done.error()).c_str());
    reactor.shutdown();
  });
  if (demo)
    type_lines(reactor, source, {"hello", "how are you?", "bye"});
  else
    read_stdin(reactor, source);
  reactor.run();
  return status;
}

int main(int argc, char** argv) {
  return torsion::examples::run_main(argc, argv, example_main);
}
