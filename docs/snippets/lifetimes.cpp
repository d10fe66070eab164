// docs/protocols-and-factories.md, "Callbacks that outlive their protocol".
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "docs/snippets/snippets.hpp"
#include "framework/deferred.hpp"
#include "framework/task.hpp"
#include "framework/task_group.hpp"
#include "framework/testing/string_transport.hpp"
#include "protocols/line_receiver.hpp"

namespace docs {
namespace {

// A directory whose answers come later (a database, a child process): the test fires them.
struct Directory {
  std::map<std::string, torsion::Deferred<std::string>> pending;
  torsion::Deferred<std::string> lookup(const std::string& user) { return pending[user]; }
};

// [snippet:bound-callback]
// Finger, answering from a lookup that may finish after the client has gone: a plain
// [this] callback, handed out while the protocol handles a line, is bound to it.
class Finger : public torsion::LineReceiver {
 public:
  explicit Finger(Directory& directory) : directory_(directory) {}
  void line_received(std::string_view user) override {
    directory_.lookup(std::string(user)).add_callback([this](std::string answer) {
      transport().write(answer);  // runs only while this protocol exists
      transport().lose_connection();
    });
  }

 private:
  Directory& directory_;
};
// [end]

// [snippet:coroutine-in-protocol]
// A coroutine keeps `this` in its frame across co_await, where no binding can see it.
// Run it in a TaskGroup that the protocol owns and cancel that in connection_lost: a
// task still waiting then ends there (CancelledError), while the protocol exists.
class SlowFinger : public torsion::LineReceiver {
 public:
  explicit SlowFinger(Directory& directory) : directory_(directory) {}
  void line_received(std::string_view user) override { tasks_.spawn(answer(std::string(user))); }
  void connection_lost(const torsion::Reason&) override { tasks_.cancel(); }

 private:
  torsion::Task<void> answer(std::string user) {
    const std::string text = co_await directory_.lookup(user);
    transport().write(text);
  }
  Directory& directory_;
  torsion::TaskGroup tasks_;
};
// [end]

// One connection that asks for "alice" and is gone (protocol destroyed) before the
// answer; then the answer comes. Returns what the connection was sent.
template <class P>
std::string answer_after_the_client_left(Directory& directory) {
  torsion::testing::StringTransport t;
  auto protocol = std::make_unique<P>(directory);
  t.connect(*protocol);
  t.receive("alice\r\n");
  t.disconnect();
  protocol.reset();
  directory.pending["alice"].callback("alice: on since today\r\n");
  return t.value();
}

}  // namespace

std::string late_answers() {
  Directory finger, slow;
  return "finger[" + answer_after_the_client_left<Finger>(finger) + "] slow[" +
         answer_after_the_client_left<SlowFinger>(slow) + "]";
}

std::string answers_in_time() {
  Directory for_finger, for_slow;  // one consumer per Deferred
  torsion::testing::StringTransport a, b;
  Finger finger(for_finger);
  SlowFinger slow(for_slow);
  a.connect(finger);
  b.connect(slow);
  a.receive("bob\r\n");
  b.receive("bob\r\n");
  for_finger.pending["bob"].callback("bob: idle\r\n");
  for_slow.pending["bob"].callback("bob: idle\r\n");
  std::string out = a.value() + b.value();
  a.disconnect();
  b.disconnect();
  return out;
}

}  // namespace docs
