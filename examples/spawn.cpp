// spawn: runs a command and streams its stdout and stderr through a ProcessProtocol,
// tagging each chunk, then exits with the command's own status.
//   ./spawn ls -l /        ./spawn sh -c 'echo out; echo err >&2; exit 3'
#include <cstdio>
#include <string>
#include <vector>

#include "examples/cli.hpp"
#include "framework/reactor.hpp"
#include "transports/process.hpp"

namespace {

class Tagger final : public torsion::ProcessProtocol {
 public:
  explicit Tagger(torsion::Reactor& reactor) : reactor_(reactor) {}
  int code = 0;

  void out_received(std::string_view data) override { emit("out| ", data); }
  void err_received(std::string_view data) override { emit("err| ", data); }
  void process_ended(const torsion::ExitStatus& status) override {
    std::printf("[%s]\n", status.to_string().c_str());
    code = status.exited() ? status.exit_code : 128 + status.signal;
    reactor_.stop();
  }

 private:
  void emit(const char* tag, std::string_view data) {
    std::printf("%s%.*s", tag, static_cast<int>(data.size()), data.data());
    if (!data.empty() && data.back() != '\n') std::printf("\n");
    std::fflush(stdout);
  }
  torsion::Reactor& reactor_;
};

}  // namespace

int example_main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s command [args...]\n", argv[0]);
    return 2;
  }
  torsion::Reactor reactor;
  Tagger tagger(reactor);
  auto process = torsion::spawn_process(reactor, tagger,
                                        std::vector<std::string>(argv + 1, argv + argc));
  process->close_stdin();
  reactor.run();
  return tagger.code;
}

int main(int argc, char** argv) {
  return torsion::examples::run_main(argc, argv, example_main);
}
