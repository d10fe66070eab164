#include "transports/process_helpers.hpp"

#include <signal.h>

#include <memory>
#include <utility>

namespace torsion {
namespace {

// Collects a child's output into a ProcessOutput and fires `done` when it has ended. The
// transport owns it (spawn_process's unique_ptr form), so it lives until process_ended.
class Collector final : public ProcessProtocol {
 public:
  Collector(Deferred<ProcessOutput> done, ProcessRunOptions options)
      : done_(std::move(done)), options_(std::move(options)) {}

  void connection_made() override {
    if (!options_.input.empty()) transport().write(std::move(options_.input));
    transport().close_stdin();
  }
  void out_received(std::string_view data) override { keep(result_.out, data); }
  void err_received(std::string_view data) override {
    keep(options_.errortoo ? result_.out : result_.err, data);
  }
  void process_ended(const ExitStatus& status) override {
    result_.status = status;
    if (done_.called()) return;  // cancelled
    if (too_much_)
      done_.errback(ProcessError("the process wrote more than " +
                                     std::to_string(options_.max_output) + " bytes",
                                 std::move(result_)));
    else
      done_.callback(std::move(result_));
  }

 private:
  void keep(std::string& into, std::string_view data) {
    if (too_much_) return;
    const std::size_t room = options_.max_output - (result_.out.size() + result_.err.size());
    if (data.size() > room) {
      too_much_ = true;
      into.append(data.substr(0, room));
      transport().signal_process(SIGKILL);
      transport().abort_connection();
      return;
    }
    into.append(data);
  }

  Deferred<ProcessOutput> done_;
  ProcessRunOptions options_;
  ProcessOutput result_;
  bool too_much_ = false;
};

}  // namespace

Deferred<ProcessOutput> get_process_output_and_value(Reactor& reactor,
                                                     const std::vector<std::string>& argv,
                                                     ProcessRunOptions options) {
  // The canceller reaches the child through a weak handle: the child may be gone.
  auto child = std::make_shared<std::weak_ptr<ProcessTransport>>();
  Deferred<ProcessOutput> done([child](Deferred<ProcessOutput>&) {
    if (auto t = child->lock()) {
      t->signal_process(SIGKILL);
      t->abort_connection();
    }
  });
  const ProcessOptions process = options.process;
  *child = spawn_process(reactor, std::make_unique<Collector>(done, std::move(options)), argv,
                         process);
  return done;
}

Deferred<std::string> get_process_output(Reactor& reactor, const std::vector<std::string>& argv,
                                         ProcessRunOptions options) {
  return get_process_output_and_value(reactor, argv, std::move(options))
      .add_callback([](ProcessOutput result) -> std::string {
        if (result.status.signal != 0) {
          const std::string what = "the process was " + result.status.to_string();
          throw ProcessError(what, std::move(result));
        }
        if (!result.err.empty()) {
          const std::string what = "the process wrote to stderr: " + result.err.substr(0, 200);
          throw ProcessError(what, std::move(result));
        }
        return std::move(result.out);
      });
}

}  // namespace torsion
