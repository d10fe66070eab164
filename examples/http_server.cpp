// http_server [--port N] [--root DIR] [--no-sendfile]: serves "hello world" at /hello and
// the files under DIR (default: the current directory) everywhere else, over HTTP/1.1
// with keep-alive; files go with sendfile(2) unless --no-sendfile (for benchmarks).
// Prints "listening on ADDR:PORT" first, so scripts can find a port picked by the kernel.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "examples/cli.hpp"
#include "framework/reactor.hpp"
#include "transports/tcp.hpp"
#include "web/http_server.hpp"
#include "web/router.hpp"
#include "web/static_files.hpp"

int example_main(int argc, char** argv) {
  int port = 8080;
  std::string root = ".";
  torsion::web::HttpServerOptions server_options;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      port = torsion::examples::port_arg(argv[++i]);
    } else if (std::strcmp(argv[i], "--root") == 0 && i + 1 < argc) {
      root = argv[++i];
    } else if (std::strcmp(argv[i], "--no-sendfile") == 0) {
      server_options.sendfile = false;
    } else {
      std::fprintf(stderr, "usage: %s [--port N] [--root DIR] [--no-sendfile]\n", argv[0]);
      return 2;
    }
  }
  torsion::Reactor reactor;
  torsion::web::Router router;
  router.get("/hello", [](torsion::web::Request&, torsion::web::Response& response) {
    response.end("hello world");
  });
  router.get("/*path", torsion::web::static_files(root));
  torsion::web::HttpFactory site(reactor, router, server_options);
  torsion::TcpListenOptions options;
  options.interface = "127.0.0.1";
  auto listening = torsion::listen_tcp(reactor, port, site, options);
  std::printf("listening on %s\n", listening->get_host().to_string().c_str());
  std::fflush(stdout);
  reactor.run();
  return 0;
}

int main(int argc, char** argv) {
  return torsion::examples::run_main(argc, argv, example_main);
}
