# Sourced by tests/install/check.sh, deb.sh and bare.sh: the PASS/FAIL counter every one
# of them ends with, and the copy of the tree the packages and the bare root are built from.

passed=0
failed=0

check() {  # check NAME STATUS [LOG]: counts one check; a failure shows the log's tail
  if [ "$2" -eq 0 ]; then
    passed=$((passed + 1)); echo "PASS $1"
  else
    failed=$((failed + 1)); echo "FAIL $1"
    [ -n "${3:-}" ] && [ -f "$3" ] && tail -40 "$3"
  fi
}

# copy_tree SRC DEST: the tracked (and new, not ignored) files of SRC into DEST, never a
# build directory lying in the tree; without git, everything but ./build*.
copy_tree() {
  mkdir -p "$2"
  if git -C "$1" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$1" && git ls-files -z --cached --others --exclude-standard \
       | xargs -0 -I{} sh -c '[ -e "{}" ] && printf "%s\0" "{}"' \
       | tar --null -T - -cf -) | tar -xf - -C "$2"
  else
    (cd "$1" && tar --exclude='./build*' -cf - .) | tar -xf - -C "$2"
  fi
}
