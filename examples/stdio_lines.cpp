// stdio_lines: a line-oriented filter over stdin/stdout. Each input line comes back
// numbered and reversed; a line longer than 64 KiB ends the program with an error.
//   printf 'hello\nworld\n' | ./stdio_lines
// (The protocols library's LineReceiver does this framing properly; this example keeps
// its own few lines so that it depends on the transports only.)
#include <algorithm>
#include <cstdio>
#include <string>

#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "transports/stdio.hpp"

namespace {

class Lines final : public torsion::Protocol {
 public:
  static constexpr std::size_t kMaxLine = 64 * 1024;
  Lines(torsion::Reactor& reactor, bool& failed) : reactor_(reactor), failed_(failed) {}

  void data_received(std::string_view data) override {
    buffer_.append(data);
    std::size_t start = 0;
    for (std::size_t nl; (nl = buffer_.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string_view line(buffer_.data() + start, nl - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      line_received(line);
      if (!transport().connected()) return;
    }
    buffer_.erase(0, start);
    if (buffer_.size() > kMaxLine) {
      transport().write("error: line longer than 65536 bytes\n");
      failed_ = true;
      transport().lose_connection();
    }
  }

  bool eof_received() override {
    if (!buffer_.empty()) line_received(buffer_);  // a last line without a newline
    return false;  // close after the replies are written
  }

  void connection_lost(const torsion::Reason&) override { reactor_.stop(); }

 private:
  void line_received(std::string_view line) {
    std::string reply = std::to_string(++count_) + ": ";
    reply.append(line.rbegin(), line.rend());
    reply += '\n';
    transport().write(std::move(reply));
  }

  torsion::Reactor& reactor_;
  std::string buffer_;
  std::size_t count_ = 0;
  bool& failed_;
};

}  // namespace

int main() {
  torsion::Reactor reactor;
  bool failed = false;
  auto transport = torsion::connect_stdio(reactor, std::make_unique<Lines>(reactor, failed));
  reactor.run();
  return failed ? 1 : 0;
}
