// The application layer: Service, MultiService (ordered start, reverse stop, waiting for
// stop Deferreds), TimerService on the manual clock, start_application and the reactor's
// graceful shutdown.
#include "framework/service.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "framework/reactor.hpp"
#include "framework/task.hpp"
#include "framework/testing/manual_clock.hpp"

using namespace torsion;
using torsion::testing::ManualClock;

namespace {

// Records its starts and stops in a shared log; its stop can be held until released.
class Recorded : public Service {
 public:
  Recorded(std::string tag, std::vector<std::string>& log) : tag_(std::move(tag)), log_(log) {}
  void start_service() override {
    if (fail_start) throw std::runtime_error("cannot start " + tag_);
    Service::start_service();
    log_.push_back("start " + tag_);
  }
  Deferred<void> stop_service() override {
    auto base = Service::stop_service();
    log_.push_back("stop " + tag_);
    if (!hold_stop) return base;
    std::move(base).add_callback([] {});
    held = Deferred<void>();
    return held;
  }
  bool fail_start = false;
  bool hold_stop = false;
  Deferred<void> held;

 private:
  std::string tag_;
  std::vector<std::string>& log_;
};

}  // namespace

TEST_CASE("MultiService starts in order, stops in reverse and waits for every stop") {
  std::vector<std::string> log;
  MultiService app;
  auto& a = app.add_service(std::make_shared<Recorded>("a", log));
  auto& b = app.add_service(std::make_shared<Recorded>("b", log));
  b.hold_stop = true;
  CHECK_FALSE(a.running());
  app.start_service();
  CHECK(app.running());
  CHECK(a.running());
  CHECK(b.running());
  CHECK(log == std::vector<std::string>{"start a", "start b"});

  bool stopped = false;
  app.stop_service().add_callback([&] { stopped = true; });
  CHECK(log == std::vector<std::string>{"start a", "start b", "stop b", "stop a"});
  CHECK_FALSE(stopped);  // b's stop is still under way
  b.held.callback();
  CHECK(stopped);
  CHECK_FALSE(app.running());
}

TEST_CASE("MultiService: names, a service added while running starts, removal stops it") {
  std::vector<std::string> log;
  MultiService app;
  auto first = std::make_shared<Recorded>("first", log);
  first->set_name("first");
  app.add_service(first);
  CHECK(app.get_service("first") == first.get());
  CHECK(app.get_service("none") == nullptr);
  CHECK(first->parent() == &app);
  CHECK_THROWS_AS(first->set_name("other"), std::logic_error);
  auto same_name = std::make_shared<Recorded>("again", log);
  same_name->set_name("first");
  CHECK_THROWS_AS(app.add_service(same_name), std::invalid_argument);
  CHECK_THROWS_AS(app.add_service(first), std::invalid_argument);  // already has a parent

  app.start_service();
  app.add_service(std::make_shared<Recorded>("late", log));
  CHECK(log.back() == "start late");
  bool removed = false;
  app.remove_service(*first).add_callback([&] { removed = true; });
  CHECK(removed);
  CHECK(log.back() == "stop first");
  CHECK(first->parent() == nullptr);
  CHECK(app.services().size() == 1);
  Recorded stranger("stranger", log);
  CHECK_THROWS_AS((void)app.remove_service(stranger), std::invalid_argument);
}

TEST_CASE("MultiService: a failed start stops what started, in reverse, and propagates") {
  std::vector<std::string> log;
  MultiService app;
  app.add_service(std::make_shared<Recorded>("a", log));
  app.add_service(std::make_shared<Recorded>("b", log));
  app.add_service(std::make_shared<Recorded>("c", log)).fail_start = true;
  CHECK_THROWS_AS(app.start_service(), std::runtime_error);
  CHECK(log == std::vector<std::string>{"start a", "start b", "stop b", "stop a"});
  CHECK_FALSE(app.running());
}

TEST_CASE("TimerService calls at start and every interval while running (manual clock)") {
  ManualClock clock;
  int calls = 0;
  TimerService timer(clock, 10, [&] { ++calls; });
  clock.advance(30);
  CHECK(calls == 0);  // not running yet
  timer.start_service();
  CHECK(calls == 1);
  clock.advance(10);
  CHECK(calls == 2);
  clock.advance(25);
  CHECK(calls == 4);
  bool stopped = false;
  timer.stop_service().add_callback([&] { stopped = true; });
  CHECK(stopped);
  clock.advance(100);
  CHECK(calls == 4);
  timer.start_service();  // and again
  CHECK(calls == 5);
  CHECK_THROWS_AS(TimerService(clock, 0, [] {}), std::invalid_argument);
}

TEST_CASE("TimerService waits for a call's Deferred before stopping") {
  ManualClock clock;
  Deferred<void> work;
  int calls = 0;
  TimerService timer(clock, 1, [&]() -> Deferred<void> {
    ++calls;
    work = Deferred<void>();
    return work;
  });
  timer.start_service();
  CHECK(calls == 1);
  bool stopped = false;
  timer.stop_service().add_callback([&] { stopped = true; });
  CHECK_FALSE(stopped);
  work.callback();
  CHECK(stopped);
}

TEST_CASE("start_application: the reactor's shutdown stops the services before it ends") {
  Reactor reactor;
  reactor.set_handle_signals(false);
  std::vector<std::string> log;
  auto app = std::make_shared<MultiService>();
  auto& a = app->add_service(std::make_shared<Recorded>("a", log));
  auto& b = app->add_service(std::make_shared<Recorded>("b", log));
  b.hold_stop = true;
  start_application(reactor, app);
  CHECK(a.running());
  reactor.add_shutdown_trigger(ShutdownPhase::during, [&] { log.push_back("during"); });
  reactor.call_soon([&] { reactor.shutdown(); });
  // b's stop is released a little later: the shutdown waits for it before `during`.
  auto release = reactor.call_later(0.05, [&] {
    log.push_back("release b");
    b.held.callback();
  });
  reactor.run();
  CHECK(log ==
        std::vector<std::string>{"start a", "start b", "stop b", "stop a", "release b", "during"});
  CHECK_FALSE(app->running());
}
