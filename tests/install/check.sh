#!/usr/bin/env bash
# Proves that torsion can be adopted both ways a meson user would: a tiny consumer project,
# made in a temporary folder outside the tree, is built and run
#   1. against an installed torsion (meson install --prefix into the temporary folder, then
#      PKG_CONFIG_PATH), with meson and with a bare g++ $(pkg-config ...) line;
#   2. against torsion as a meson subproject (subprojects/torsion -> this tree).
# The consumer serves and connects through endpoint strings, uses the testing toolkit and
# checks that the version macro, the library and torsion.pc agree.
# Usage: tests/install/check.sh [SOURCE_DIR]     prints "install: N passed, N failed"
set -u
src=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
jobs=${JOBS:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

check() {  # check NAME STATUS [LOG]
  if [ "$2" -eq 0 ]; then
    passed=$((passed + 1)); echo "PASS $1"
  else
    failed=$((failed + 1)); echo "FAIL $1"
    [ -n "${3:-}" ] && [ -f "$3" ] && tail -30 "$3"
  fi
}

# --- the consumer project -----------------------------------------------------------------
mkdir -p "$work/consumer"
cat > "$work/consumer/meson.build" <<'EOF'
project('consumer', 'cpp', default_options: ['cpp_std=c++20', 'warning_level=3', 'werror=true'])
torsion = dependency('torsion', fallback: 'torsion', default_options: ['tests=false'])
executable('consumer', 'main.cpp', dependencies: torsion)
EOF
cat > "$work/consumer/main.cpp" <<'EOF'
// An echo server and a client in one process, both made from endpoint strings.
#include <cstdio>
#include <cstring>
#include <string>

#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "framework/testing/string_transport.hpp"
#include "framework/version.hpp"
#include "transports/endpoints.hpp"

namespace {

struct Echo : torsion::Protocol {
  void data_received(std::string_view data) override { transport().write(data); }
};

class Hello : public torsion::Protocol {
 public:
  explicit Hello(std::string& got) : got_(got) {}
  void connection_made() override { transport().write("hello"); }
  void data_received(std::string_view data) override {
    got_.append(data);
    if (got_.size() >= 5) transport().lose_connection();
  }

 private:
  std::string& got_;
};

class HelloFactory : public torsion::ClientFactory {
 public:
  HelloFactory(torsion::Reactor& reactor, std::string& got) : reactor_(reactor), got_(got) {}
  std::unique_ptr<torsion::Protocol> build_protocol(const torsion::Address&) override {
    return std::make_unique<Hello>(got_);
  }
  void client_connection_failed(torsion::Connector&, const torsion::Reason& why) override {
    std::fprintf(stderr, "connect failed: %s\n", why.message().c_str());
    reactor_.stop();
  }
  void client_connection_lost(torsion::Connector&, const torsion::Reason&) override {
    reactor_.stop();
  }

 private:
  torsion::Reactor& reactor_;
  std::string& got_;
};

}  // namespace

int main() {
  if (std::strcmp(torsion::version(), TORSION_VERSION_STRING) != 0) {
    std::fprintf(stderr, "header %s, library %s\n", TORSION_VERSION_STRING, torsion::version());
    return 1;
  }
  // The testing toolkit is installed too.
  torsion::testing::StringTransport fake;
  Echo probe;
  fake.connect(probe);
  probe.data_received("x");
  if (fake.value() != "x") return 1;

  torsion::Reactor reactor;
  auto echo = torsion::make_factory<Echo>();
  auto port = torsion::server_from_string(reactor, "tcp:0:interface=127.0.0.1")->listen(echo);
  std::string got;
  HelloFactory factory(reactor, got);
  auto client = torsion::client_from_string(
      reactor, "tcp:127.0.0.1:" + std::to_string(port->port()) + ":timeout=10");
  auto connector = client->connect(factory);
  reactor.run_until([&] { return got.size() >= 5 && reactor.connection_count() == 0; }, 20);
  if (got != "hello") {
    std::fprintf(stderr, "echo: got '%s'\n", got.c_str());
    return 1;
  }
  std::printf("consumer ok, torsion %s\n", TORSION_VERSION_STRING);
  return 0;
}
EOF

# --- 1. installed torsion -----------------------------------------------------------------
prefix="$work/prefix"
meson setup "$work/torsion-build" "$src" --prefix "$prefix" -Dtests=false \
  -Dbuildtype=release >"$work/setup.log" 2>&1 \
  && ninja -C "$work/torsion-build" -j"$jobs" >"$work/build.log" 2>&1 \
  && meson install -C "$work/torsion-build" --quiet >"$work/install.log" 2>&1
check "meson install into a prefix" $? "$work/install.log"
project_version=$(meson introspect "$work/torsion-build" --projectinfo 2>/dev/null \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])' 2>/dev/null)

pc=$(find "$prefix" -name torsion.pc -print -quit)
[ -n "$pc" ] && [ -f "$prefix/include/torsion/framework/protocol.hpp" ] \
  && [ -f "$prefix/include/torsion/framework/version.hpp" ] \
  && [ -f "$prefix/include/torsion/transports/detail/stream_transport.hpp" ] \
  && [ -n "$(find "$prefix" -name 'libtorsion.*' -print -quit)" ]
check "headers (with subdirectories), library and torsion.pc are installed" $?

export PKG_CONFIG_PATH="$(dirname "${pc:-/nonexistent/x}")"
[ "$(pkg-config --modversion torsion 2>/dev/null)" = "$project_version" ] \
  && grep -q "TORSION_VERSION_STRING \"$project_version\"" "$prefix/include/torsion/framework/version.hpp"
check "torsion.pc and version.hpp carry the project version ($project_version)" $?

meson setup "$work/consumer-installed" "$work/consumer" >"$work/c1.log" 2>&1 \
  && grep -q "Run-time dependency torsion found: YES" "$work/c1.log" \
  && ninja -C "$work/consumer-installed" >>"$work/c1.log" 2>&1 \
  && "$work/consumer-installed/consumer" >>"$work/c1.log" 2>&1 \
  && grep -q "consumer ok" "$work/c1.log"
check "a meson consumer builds and runs against the installed torsion" $? "$work/c1.log"

# shellcheck disable=SC2046
g++ -std=c++20 -Wall -Werror "$work/consumer/main.cpp" -o "$work/consumer-gxx" \
  $(pkg-config --cflags --libs torsion) >"$work/c2.log" 2>&1 \
  && "$work/consumer-gxx" >>"$work/c2.log" 2>&1
check "g++ \$(pkg-config --cflags --libs torsion) builds and runs the consumer" $? "$work/c2.log"
unset PKG_CONFIG_PATH

# --- 2. torsion as a subproject -----------------------------------------------------------
mkdir -p "$work/consumer/subprojects"
ln -s "$src" "$work/consumer/subprojects/torsion"
meson setup "$work/consumer-sub" "$work/consumer" --force-fallback-for=torsion \
  >"$work/c3.log" 2>&1 \
  && ninja -C "$work/consumer-sub" -j"$jobs" >>"$work/c3.log" 2>&1 \
  && "$work/consumer-sub/consumer" >>"$work/c3.log" 2>&1 \
  && grep -q "consumer ok" "$work/c3.log"
check "a meson consumer builds and runs with torsion as a subproject" $? "$work/c3.log"

# As a subproject torsion builds its library only: no examples or tests in the consumer's tree.
[ ! -e "$work/consumer-sub/subprojects/torsion/examples/echo_server" ] \
  && [ ! -e "$work/consumer-sub/subprojects/torsion/tests/torsion_tests" ]
check "the subproject builds no examples or tests" $?

echo "install: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
