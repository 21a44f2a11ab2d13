#!/usr/bin/env bash
# Runs the fuzz targets built in fuzz/build/ (make fuzz-build), each for SECONDS
# on a copy of its checked-in seed corpus (fuzz/corpus/<target>/ never grows),
# and prints for each the executions, the speed and libFuzzer's final
# coverage (cov: edges, ft: features).  A target that crashes, trips a
# sanitizer or a property check, times out or runs out of memory fails the run
# (exit 1); its input is left in fuzz/build/crashes/ and the end of its log is
# printed.  Usage: fuzz/run.sh SECONDS [TARGET...]   (make fuzz / make fuzz-ci)
set -u
here="$(cd "$(dirname "$0")" && pwd)"
build="$here/build"
secs="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_frame fuzz_heartbeat fuzz_session fuzz_sid fuzz_config)

# the longest input worth trying, per target
max_len() {
  case "$1" in
    fuzz_frame)     echo 1024 ;;   # 40-byte header, a payload, a 28-byte seal
    fuzz_heartbeat) echo 512 ;;    # SC_HB_MAX_LEN is 262; sealed: + 32
    fuzz_session)   echo 4096 ;;
    fuzz_sid)       echo 512 ;;    # SC_SID_MAX is 100
    fuzz_config)    echo 8192 ;;   # the seed blocks are up to 2.3 kB
    *)              echo 4096 ;;
  esac
}

mkdir -p "$build/crashes" "$build/run"
failed=()
for t in "${targets[@]}"; do
  bin="$build/$t"
  if [ ! -x "$bin" ]; then
    echo "fuzz: $t: $bin is missing (make fuzz-build)"
    failed+=("$t")
    continue
  fi
  work="$build/run/$t"
  rm -rf "$work"
  mkdir -p "$work/corpus"
  if [ -d "$here/corpus/$t" ]; then
    cp "$here/corpus/$t"/* "$work/corpus/" 2>/dev/null || true
  fi
  seeds=$(ls "$work/corpus" | wc -l)
  dict=()
  [ -f "$here/$t.dict" ] && dict=(-dict="$here/$t.dict")
  touch "$work/start"
  "$bin" -max_len="$(max_len "$t")" -max_total_time="$secs" -timeout=25 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$build/crashes/$t-" \
    "${dict[@]}" "$work/corpus" >"$work/log" 2>&1
  rc=$?
  # libFuzzer's last status line: "#N  DONE  cov: C ft: F corp: ... exec/s: S ..."
  last=$(grep -E '^#[0-9]+.*cov: ' "$work/log" | tail -n 1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -n 1)
  cov=$(printf '%s\n' "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
  ft=$(printf '%s\n' "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
  corp=$(ls "$work/corpus" | wc -l)
  printf 'fuzz: %-15s %10s execs %8s exec/s  cov: %-5s ft: %-6s corpus: %s seeds -> %s inputs\n' \
    "$t" "${execs:-?}" "${speed:-?}" "${cov:-?}" "${ft:-?}" "$seeds" "$corp"
  if [ $rc -ne 0 ]; then
    failed+=("$t")
    echo "fuzz: $t FAILED (libFuzzer exit $rc); log: $work/log"
    found=$(find "$build/crashes" -name "$t-*" -newer "$work/start" -type f)
    if [ -n "$found" ]; then
      for f in $found; do
        echo "fuzz: $t: input left in $f ($(wc -c <"$f") bytes):"
        od -An -tx1 -v "$f" | head -n 20
      done
    fi
    echo "---- end of $t's log ----"
    tail -n 60 "$work/log"
    echo "----"
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (${secs} s per target)"
  exit 1
fi
echo "fuzz: no crash in ${#targets[@]} targets, ${secs} s each"
