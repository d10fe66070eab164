#include <string>
#include <vector>

#include "docs/snippets/snippets.hpp"
#include "framework/maybe_deferred.hpp"
#include "transports/process_helpers.hpp"

namespace docs {
namespace {

// [snippet:run-process]
torsion::Task<std::string> word_count(torsion::Reactor& reactor, std::string text) {
  torsion::ProcessRunOptions options;
  options.input = std::move(text);  // written to stdin, which is then closed
  const std::vector<std::string> argv{"wc", "-w"};
  torsion::ProcessOutput r = co_await torsion::run_process(reactor, argv, options);
  co_return r.status.success() ? r.out : "wc failed: " + r.status.to_string();
}
// [end]

}  // namespace

std::string process_helpers(torsion::Reactor& reactor) {
  std::string said;
  // [snippet:get-process-output]
  torsion::get_process_output(reactor, {"echo", "hello"})
      .add_callback([&said](std::string out) { said = out; })  // "hello\n"
      .add_errback([&said](std::exception_ptr e) { said = torsion::describe_error(e); });
  // [end]
  reactor.run_until([&] { return !said.empty(); }, 10);

  std::string counted;
  word_count(reactor, "one two three").deferred().add_callback([&](std::string n) { counted = n; });
  reactor.run_until([&] { return !counted.empty(); }, 10);

  std::string checked;
  // [snippet:maybe-deferred]
  auto parse = [](const std::string& s) { return std::stoi(s); };  // may throw
  torsion::maybe_deferred(parse, "x42")
      .add_errback([](std::exception_ptr) { return -1; })
      .add_callback([&checked](int n) { checked = std::to_string(n); });  // "-1"
  // [end]
  return said + counted + checked;
}

}  // namespace docs
