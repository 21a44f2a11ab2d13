#!/usr/bin/env bash
# Configures and builds the module in the checkout (warnings are errors).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
  autoreconf -fi
fi
if [ ! -f Makefile ] || [ configure -nt Makefile ]; then
  ./configure --enable-werror ${APXS:+--with-apxs="$APXS"}
fi
make
