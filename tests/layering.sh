#!/bin/sh
# The direction of dependency between the layers (docs/architecture.md), one rule per
# layer: which folders its files may #include "..." from. The build enforces the first
# three too (each layer compiles seeing only those headers: meson.build, layer_args);
# this names the offending lines, and covers web/. Usage: layering.sh SOURCE_ROOT
# Prints "layering: N passed, N failed" (one per rule).
root=${1:?usage: layering.sh SOURCE_ROOT}
cd "$root" || exit 1
passed=0
failed=0
rule() {  # rule LAYER ALLOWED-FOLDER...
  layer=$1; shift
  allowed=$(echo "$@" | sed 's/ /\\|/g')
  folders=$(echo "$@" | sed 's|\([^ ]*\)|\1/|g')
  bad=$(grep -rn '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$layer" 2>/dev/null \
        | grep -v "#[[:space:]]*include[[:space:]]*\"\\($allowed\\)/")
  if [ -n "$bad" ]; then
    echo "FAIL $layer/ may include only $folders, but:"; echo "$bad"; failed=$((failed + 1))
  else
    echo "PASS $layer/ includes only $folders"; passed=$((passed + 1))
  fi
}
rule framework framework
rule protocols framework protocols
rule transports framework transports
rule web framework transports protocols web
echo "layering: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
