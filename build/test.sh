#!/usr/bin/env bash
# The test suite, from a fresh Debian 12 machine: installs what is missing,
# builds with warnings as errors, runs `make check` (Apache::Test: t/*.t and the
# multi-member tests t/cluster/*.t), then the same suite against the module
# built with AddressSanitizer and UndefinedBehaviorSanitizer (`make
# check-asan`).  Prints prove's summary ("Result: PASS") for each.  Before
# them, a short fuzzing run: every libFuzzer target 15 s (`make fuzz-ci`,
# fuzz/README).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
bash "$here/build/install-deps.sh"

# As root, Apache::Test runs httpd's children as 'nobody', who must be able to
# read the checkout.  When it cannot (a checkout under /root, say), the suite
# runs from a copy under /tmp.
workdir="$here"
if [ "$(id -u)" -eq 0 ] && ! runuser -u nobody -- test -r "$here/t/TEST.PL" 2>/dev/null; then
  workdir="$(mktemp -d /tmp/mod_session_cluster-test.XXXXXX)"
  chmod 755 "$workdir"
  echo "test: $here is not readable by 'nobody'; testing a copy in $workdir"
  (cd "$here" && tar --exclude=./t/tmp --exclude=./t/logs -cf - .) | (cd "$workdir" && tar -xf -)
fi

cd "$workdir"
bash build/build.sh
make fuzz-ci
make check
make check-asan
