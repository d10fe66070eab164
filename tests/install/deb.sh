#!/usr/bin/env bash
# Builds the Debian packages from debian/ as a packager would (dpkg-buildpackage -us -uc -b
# on a copy of the tree, test suite not run: DEB_BUILD_OPTIONS=nocheck), checks what they
# hold, and leaves the .deb files in OUT_DIR for tests/install/bare.sh, which installs them
# in a bare Debian root and builds a consumer against them.
# Usage: tests/install/deb.sh SOURCE_DIR OUT_DIR     prints "deb: N passed, N failed"
set -u
src=$(cd "$1" && pwd)
out=$2
jobs=${JOBS:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/common.sh"  # check, copy_tree

project_version=$(sed -n "s/^ *version: '\([^']*\)'.*/\1/p" "$src/meson.build" | head -1)
deb_version=$(cd "$src" && dpkg-parsechangelog -S Version 2>/dev/null)
[ -n "$project_version" ] && [ "$deb_version" = "$project_version" ]
check "debian/changelog's version ($deb_version) is meson.build's ($project_version)" $?

# A copy of the tracked (and new, not ignored) files: the packages are built from what
# the repository holds, never from a build directory lying in the tree.
tree="$work/torsion-$project_version"
copy_tree "$src" "$tree"

(cd "$tree" && DEB_BUILD_OPTIONS="nocheck parallel=$jobs" dpkg-buildpackage -us -uc -b) \
  >"$work/build.log" 2>&1
check "dpkg-buildpackage -us -uc -b builds the packages" $? "$work/build.log"

arch=$(dpkg --print-architecture)
dev="$work/libtorsion-dev_${project_version}_$arch.deb"
examples="$work/torsion-examples_${project_version}_$arch.deb"
dpkg-deb -c "$dev" >"$work/dev.list" 2>&1 \
  && grep -q '/usr/include/torsion/framework/protocol.hpp$' "$work/dev.list" \
  && grep -q '/usr/lib/[^/]*/libtorsion\.a$' "$work/dev.list" \
  && grep -q '/usr/lib/[^/]*/libtorsion_tls\.a$' "$work/dev.list" \
  && grep -q '/usr/lib/[^/]*/libtorsion_web\.a$' "$work/dev.list" \
  && grep -q '/usr/lib/[^/]*/pkgconfig/torsion\.pc$' "$work/dev.list" \
  && grep -q '/usr/lib/[^/]*/cmake/torsion/torsionConfig\.cmake$' "$work/dev.list"
check "libtorsion-dev holds the headers, the three static libraries, the .pc and CMake files" $? \
  "$work/dev.list"
dpkg-deb -c "$examples" >"$work/examples.list" 2>&1 \
  && grep -q '/usr/libexec/torsion/echo_server$' "$work/examples.list" \
  && grep -q '/usr/libexec/torsion/http_server$' "$work/examples.list"
check "torsion-examples holds the example programs in /usr/libexec/torsion" $? "$work/examples.list"

mkdir -p "$out" && cp "$dev" "$examples" "$out/" 2>/dev/null
check "the packages are copied to $out" $?

echo "deb: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
