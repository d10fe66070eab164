#!/bin/sh
# The web layer's place in the dependency order (DESIGN.md): web/ includes only
# framework/, transports/, protocols/ and itself; framework/, transports/ and protocols/
# never include web/. Usage: layering.sh SOURCE_ROOT
root=${1:?usage: layering.sh SOURCE_ROOT}
cd "$root" || exit 1
status=0
bad=$(grep -rn '#include "web/' framework transports protocols 2>/dev/null)
if [ -n "$bad" ]; then echo "the library below web/ includes it:"; echo "$bad"; status=1; fi
bad=$(grep -rn '#include "' web | grep -v '#include "\(framework\|transports\|protocols\|web\)/')
if [ -n "$bad" ]; then echo "web/ includes something outside the layers it may use:"; echo "$bad"; status=1; fi
[ $status -eq 0 ] && echo "layering: web/ depends only on framework/, transports/, protocols/"
exit $status
