#!/usr/bin/env bash
# Proves that torsion can be adopted both ways a meson user would: a tiny consumer project,
# made in a temporary folder outside the tree, is built and run
#   1. against an installed torsion (meson install --prefix into the temporary folder, then
#      PKG_CONFIG_PATH), with meson and with a bare g++ $(pkg-config ...) line;
#      with CMake (find_package(torsion CONFIG): torsion::torsion, torsion::tls, the
#      version checked), and staged (meson install --destdir) or moved, through the
#      relocatable .pc and CMake files;
#   2. against torsion as a meson subproject (subprojects/torsion -> this tree).
# The consumer serves and connects through endpoint strings, uses the testing toolkit and
# checks that the version macro, the library and torsion.pc agree. A second program,
# tls_consumer, links torsion_tls (torsion_tls.pc; dependency('torsion_tls') with the
# fallback torsion_tls_dep) and echoes over verified TLS through ssl: endpoint strings,
# with a throwaway CA from examples/make_test_cert.sh (needs the openssl command).
# Usage: tests/install/check.sh [SOURCE_DIR]     prints "install: N passed, N failed"
set -u
src=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
jobs=${JOBS:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/common.sh"  # check

# --- the consumer project -----------------------------------------------------------------
cp -r "$src/tests/install/consumer" "$work/consumer"  # meson.build, CMakeLists.txt, main.cpp, tls_main.cpp

certs="$work/certs"
sh "$src/examples/make_test_cert.sh" "$certs" >"$work/certs.log" 2>&1
check "a throwaway CA and server certificate (examples/make_test_cert.sh)" $? "$work/certs.log"

# --- 1. installed torsion -----------------------------------------------------------------
prefix="$work/prefix"
meson setup "$work/torsion-build" "$src" --prefix "$prefix" -Dtests=false -Dexamples=false \
  -Dbuildtype=release >"$work/setup.log" 2>&1 \
  && ninja -C "$work/torsion-build" -j"$jobs" >"$work/build.log" 2>&1 \
  && meson install -C "$work/torsion-build" --quiet >"$work/install.log" 2>&1
check "meson install into a prefix" $? "$work/install.log"
# -Dtests=false -Dexamples=false builds the two libraries and nothing else.
[ -e "$work/torsion-build/libtorsion_tls.a" ] && [ ! -e "$work/torsion-build/examples" ] \
  && [ ! -e "$work/torsion-build/tests" ]
check "-Dtests=false -Dexamples=false builds the libraries only" $?
project_version=$(meson introspect "$work/torsion-build" --projectinfo 2>/dev/null \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])' 2>/dev/null)

pc=$(find "$prefix" -name torsion.pc -print -quit)
tls_pc=$(find "$prefix" -name torsion_tls.pc -print -quit)
[ -n "$pc" ] && [ -f "$prefix/include/torsion/framework/protocol.hpp" ] \
  && [ -f "$prefix/include/torsion/framework/version.hpp" ] \
  && [ -f "$prefix/include/torsion/transports/detail/stream_engine.hpp" ] \
  && [ -n "$(find "$prefix" -name 'libtorsion.*' -print -quit)" ] \
  && [ -f "$prefix/include/torsion/transports/tls_endpoints.hpp" ] \
  && [ -n "$(find "$prefix" -name 'libtorsion_tls.*' -print -quit)" ] \
  && [ -n "$tls_pc" ] && [ "$(dirname "$tls_pc")" = "$(dirname "$pc")" ]
check "headers (with subdirectories), libtorsion(_tls) and torsion(_tls).pc are installed" $?

# PKG_CONFIG_PATH as docs/installing.md writes it: <prefix>/<libdir>/pkgconfig, with
# libdir read from the build (lib/x86_64-linux-gnu on Debian, not lib/).
libdir=$(meson introspect "$work/torsion-build" --buildoptions \
  | python3 -c 'import json, sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "libdir"))')
export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig"
[ -n "$pc" ] && [ "$PKG_CONFIG_PATH" -ef "$(dirname "$pc")" ]
check "the .pc files are in <prefix>/<libdir from meson introspect>/pkgconfig ($libdir)" $?

requires=$(pkg-config --print-requires torsion_tls 2>&1)
echo "$requires" >"$work/requires.log"
[[ "$requires" == *torsion* ]] && [[ "$requires" == *openssl* ]] \
  && [ "$(pkg-config --modversion torsion_tls 2>/dev/null)" = "$project_version" ]
check "torsion_tls.pc requires torsion and openssl, version $project_version" $? "$work/requires.log"
[ "$(pkg-config --modversion torsion 2>/dev/null)" = "$project_version" ] \
  && grep -q "TORSION_VERSION_STRING \"$project_version\"" "$prefix/include/torsion/framework/version.hpp"
check "torsion.pc and version.hpp carry the project version ($project_version)" $?

meson setup "$work/consumer-installed" "$work/consumer" >"$work/c1.log" 2>&1 \
  && grep -q "Run-time dependency torsion found: YES" "$work/c1.log" \
  && grep -q "Run-time dependency torsion_tls found: YES" "$work/c1.log" \
  && ninja -C "$work/consumer-installed" >>"$work/c1.log" 2>&1 \
  && "$work/consumer-installed/consumer" >>"$work/c1.log" 2>&1 \
  && grep -q "^consumer ok" "$work/c1.log" \
  && "$work/consumer-installed/tls_consumer" "$certs" >>"$work/c1.log" 2>&1 \
  && grep -q "^tls consumer ok" "$work/c1.log"
check "a meson consumer (torsion, torsion_tls) builds and runs against the installed torsion" $? "$work/c1.log"

# shellcheck disable=SC2046
g++ -std=c++20 -Wall -Werror "$work/consumer/main.cpp" -o "$work/consumer-gxx" \
  $(pkg-config --cflags --libs torsion) >"$work/c2.log" 2>&1 \
  && "$work/consumer-gxx" >>"$work/c2.log" 2>&1
check "g++ \$(pkg-config --cflags --libs torsion) builds and runs the consumer" $? "$work/c2.log"

# A TLS program needs only torsion_tls's line: no -ltorsion_tls, -lssl or -lcrypto by hand.
# shellcheck disable=SC2046
g++ -std=c++20 -Wall -Werror "$work/consumer/tls_main.cpp" -o "$work/tls-consumer-gxx" \
  $(pkg-config --cflags --libs torsion_tls) >"$work/c2tls.log" 2>&1 \
  && "$work/tls-consumer-gxx" "$certs" >>"$work/c2tls.log" 2>&1 \
  && grep -q "^tls consumer ok" "$work/c2tls.log"
check "g++ \$(pkg-config --cflags --libs torsion_tls) builds and runs the TLS consumer" $? "$work/c2tls.log"
unset PKG_CONFIG_PATH

# CMake: find_package(torsion CONFIG) from the package files meson installed beside the
# .pc files; torsion::torsion and torsion::tls, with the version checked.
# cmake_consumer NAME PREFIX: configures (asking for this version), builds and runs.
cmake_consumer() {
  local dir="$work/cmake-$1" log="$work/cmake-$1.log"
  cmake -S "$work/consumer" -B "$dir" -DCMAKE_PREFIX_PATH="$2" -DWANT="$project_version" \
    -DCMAKE_CXX_FLAGS="-Wall -Werror" >"$log" 2>&1 \
    && cmake --build "$dir" -j"$jobs" >>"$log" 2>&1 \
    && "$dir/consumer" >>"$log" 2>&1 && grep -q "^consumer ok" "$log" \
    && "$dir/tls_consumer" "$certs" >>"$log" 2>&1 && grep -q "^tls consumer ok" "$log"
}
if command -v cmake >/dev/null; then
  [ -f "$prefix/$libdir/cmake/torsion/torsionConfig.cmake" ] \
    && [ -f "$prefix/$libdir/cmake/torsion/torsionConfigVersion.cmake" ]
  check "torsionConfig.cmake and torsionConfigVersion.cmake are in <prefix>/$libdir/cmake/torsion" $?
  cmake_consumer installed "$prefix"
  check "a CMake consumer (find_package, torsion::torsion, torsion::tls; torsion::web found) builds and runs" $? \
    "$work/cmake-installed.log"
  # Before 1.0 the same minor version is required: a newer one, or another minor, is refused.
  major=${project_version%%.*}
  minor=${project_version#*.}; minor=${minor%%.*}
  refused=0
  for want in 99.0 "$major.$((minor + 1))"; do
    cmake -S "$work/consumer" -B "$work/cmake-want-$want" -DCMAKE_PREFIX_PATH="$prefix" \
      -DWANT="$want" >>"$work/cmake-want.log" 2>&1 || refused=$((refused + 1))
  done
  [ "$(grep -c "compatible with requested version" "$work/cmake-want.log")" -eq 2 ] \
    && [ $refused -eq 2 ]
  check "find_package(torsion X.Y) refuses versions other than $major.$minor.x" $? "$work/cmake-want.log"
else
  check "cmake is installed (Debian cmake)" 1
fi

# Staged (meson install --destdir) and moved installs: the .pc and CMake files find
# everything relative to themselves, so plain pkg-config and find_package work from there.
stage="$work/stage"
meson install -C "$work/torsion-build" --quiet --destdir "$stage" >"$work/stage.log" 2>&1
check "meson install --destdir stages the install" $? "$work/stage.log"
cp -a "$prefix" "$work/moved"
for where in "$stage$prefix" "$work/moved"; do
  name=$([ "$where" = "$work/moved" ] && echo moved || echo staged)
  # shellcheck disable=SC2046
  PKG_CONFIG_PATH="$where/$libdir/pkgconfig" pkg-config --cflags torsion_tls \
    >"$work/$name-pc.log" 2>&1 \
    && grep -q -- "-I$where/" "$work/$name-pc.log" \
    && g++ -std=c++20 -Wall -Werror "$work/consumer/tls_main.cpp" -o "$work/$name-gxx" \
      $(PKG_CONFIG_PATH="$where/$libdir/pkgconfig" pkg-config --cflags --libs torsion_tls) \
      >>"$work/$name-pc.log" 2>&1 \
    && "$work/$name-gxx" "$certs" >>"$work/$name-pc.log" 2>&1
  check "a $name install works with plain pkg-config (prefix from \${pcfiledir})" $? \
    "$work/$name-pc.log"
  if command -v cmake >/dev/null; then
    cmake_consumer "$name" "$where"
    check "a $name install works with find_package(torsion)" $? "$work/cmake-$name.log"
  fi
done

# --- 2. torsion as a subproject -----------------------------------------------------------
mkdir -p "$work/consumer/subprojects"
ln -s "$src" "$work/consumer/subprojects/torsion"
meson setup "$work/consumer-sub" "$work/consumer" --force-fallback-for=torsion,torsion_tls \
  >"$work/c3.log" 2>&1 \
  && grep -q "Dependency torsion_tls found: YES .*(overridden)" "$work/c3.log" \
  && ninja -C "$work/consumer-sub" -j"$jobs" >>"$work/c3.log" 2>&1 \
  && "$work/consumer-sub/consumer" >>"$work/c3.log" 2>&1 \
  && grep -q "^consumer ok" "$work/c3.log" \
  && "$work/consumer-sub/tls_consumer" "$certs" >>"$work/c3.log" 2>&1 \
  && grep -q "^tls consumer ok" "$work/c3.log"
check "a meson consumer (torsion, torsion_tls) builds and runs with torsion as a subproject" $? "$work/c3.log"

# As a subproject torsion builds its library only: no examples or tests in the consumer's tree.
[ ! -e "$work/consumer-sub/subprojects/torsion/examples/echo_server" ] \
  && [ ! -e "$work/consumer-sub/subprojects/torsion/tests/framework_tests" ]
check "the subproject builds no examples or tests" $?

echo "install: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
