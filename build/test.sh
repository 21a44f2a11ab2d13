#!/usr/bin/env bash
# The test suite, from a fresh Debian 12 machine: installs what is missing,
# builds with warnings as errors, runs `make check` (Apache::Test: t/*.t and the
# multi-member tests t/cluster/*.t), then the same suite against the module
# built with AddressSanitizer and UndefinedBehaviorSanitizer (`make
# check-asan`).  Prints prove's summary ("Result: PASS") for each.  Before
# them, a short fuzzing run: every libFuzzer target 5 s (`make fuzz-ci`,
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
# A crashed httpd process leaves a core in cores/ (not under t/, where
# Apache::Test reports every core it finds as its own), and the harness prints its
# stacks with gdb (SC::Cluster, SC_CORE_DIR): cores on, named core.PID where
# the kernel writes plain "core" files (a pipe to a crash collector is left as
# it is: then there is no core to read).
ulimit -c unlimited 2>/dev/null || true
if [ "$(cat /proc/sys/kernel/core_pattern 2>/dev/null)" = core ]; then
  echo 1 > /proc/sys/kernel/core_uses_pid 2>/dev/null || true
fi
# the session store's shared memory (up to 1 GiB) stays out of the cores
echo 0x31 > /proc/self/coredump_filter 2>/dev/null || true
mkdir -p cores && chmod 1777 cores && rm -f cores/core*
export SC_CORE_DIR="$workdir/cores"
bash build/build.sh
make fuzz-ci
make check
make check-asan
