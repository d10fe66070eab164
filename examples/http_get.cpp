// http_get URL: fetches URL with torsion_web's client and prints the status line, the
// header fields and the body, as curl -i does. Exits 1 if the request fails.
#include <cstdio>
#include <exception>
#include <string>

#include "examples/cli.hpp"
#include "framework/reactor.hpp"
#include "web/http_client.hpp"

int example_main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s URL\n", argv[0]);
    return 2;
  }
  int status = 1;
  torsion::Reactor reactor;
  torsion::web::http_request(reactor, "GET", argv[1])
      .add_callbacks(
          [&](torsion::web::ClientResponse r) {
            std::printf("HTTP/1.%d %d %s\n", r.version_minor, r.status, r.reason.c_str());
            for (const auto& [name, value] : r.headers.fields())
              std::printf("%s: %s\n", name.c_str(), value.c_str());
            std::printf("\n");
            std::fwrite(r.body.data(), 1, r.body.size(), stdout);
            status = 0;
          },
          [](std::exception_ptr e) {
            std::fprintf(stderr, "error: %s\n", torsion::describe_error(e).c_str());
          })
      .add_callback([&reactor] { reactor.shutdown(); });
  reactor.run();
  return status;
}

int main(int argc, char** argv) {
  return torsion::examples::run_main(argc, argv, example_main);
}
