#!/usr/bin/env bash
# Runs the fuzz targets built in fuzz/build/ (make fuzz-build), each for SECONDS
# on its corpus fuzz/corpus/<target>/ (the seeds gen_seeds.c writes and the
# inputs earlier runs found), and prints for each the executions, the speed,
# libFuzzer's final coverage (cov: edges, ft: features) and the corpus sizes.
#
#   fuzz/run.sh --grow SECONDS [TARGET...]   (make fuzz)
#       new inputs go to fuzz/build/run/<target>/new; after a clean run they
#       are merged back into fuzz/corpus/<target>/, minimised (libFuzzer
#       -set_cover_merge=1 into a directory holding the seeds only: the found
#       inputs kept are a small set that covers, with the seeds, every
#       feature the seeds, the corpus and the new inputs cover), so the
#       checked-in corpus grows between runs and stays small.  Commit it.
#   fuzz/run.sh --ci SECONDS [TARGET...]     (make fuzz-ci)
#       runs on a copy (fuzz/build/run/<target>/corpus); nothing is written
#       into the checkout.
#
# A target fails the run (exit 1) when: its corpus directory is missing or
# empty; libFuzzer did not load every corpus file; it crashes, trips a
# sanitizer or a property check (abort), leaks, times out (25 s per input)
# or takes more than 2 GB; or it ran fewer executions than its minimum (the
# per-target minimum for 30 s below, scaled to SECONDS; set conservatively
# low for a slow shared 2-core machine under ASan).  A failing input is left
# in fuzz/build/crashes/<target>-crash-<sha1> (or -leak-, -timeout-, -oom-),
# its bytes and the end of the log are printed.
#
#   fuzz/run.sh --known-bugs STRICT_BUILD_DIR    (make fuzz-known-bugs)
#       runs each reproducer fuzz/known-bugs/<target>/<BUG>[-what] with the
#       targets of fuzz/build/ (built with FUZZ_KNOWN_BUGS: each must pass) and
#       with those of STRICT_BUILD_DIR (built without: each fails while the
#       module bug is there), and says which bugs look fixed.
#
# Environment: FUZZ_CORPUS=DIR reads (and with --grow, writes) DIR/<target>
# instead of fuzz/corpus/<target>; FUZZ_MIN_EXECS=N replaces every minimum.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
build="$here/build"
corpus_root="${FUZZ_CORPUS:-$here/corpus}"

usage() {
  echo "usage: fuzz/run.sh --grow|--ci SECONDS [TARGET...]" >&2
  echo "       fuzz/run.sh --known-bugs STRICT_BUILD_DIR" >&2
  exit 2
}

known_bugs() {
  local strict="$1" f t name bug bad=0 n=0 out
  for f in "$here"/known-bugs/*/*; do
    [ -f "$f" ] || continue
    t=$(basename "$(dirname "$f")")
    name=$(basename "$f")
    bug=${name%%-*}
    n=$((n + 1))
    if ! out=$("$build/$t" "$f" 2>&1); then
      echo "fuzz: known bug $t/$name: FAILS with FUZZ_TOLERATE_$bug (fuzz/build/$t):"
      printf '%s\n' "$out" | grep -E 'property violated|runtime error|ERROR' | head -n 5
      bad=$((bad + 1))
    elif out=$("$strict/$t" "$f" 2>&1); then
      echo "fuzz: known bug $t/$name: passes without FUZZ_TOLERATE_$bug: fixed?" \
           "(once every reproducer of $bug passes: drop -DFUZZ_TOLERATE_$bug from" \
           "FUZZ_KNOWN_BUGS in Makefile.am and move its reproducers to" \
           "fuzz/corpus/$t/regression-<name>, fuzz/README)"
    else
      echo "fuzz: known bug $t/$name: still there: $(printf '%s\n' "$out" \
           | grep -E 'property violated|runtime error' | head -n 1)"
    fi
  done
  if [ "$n" -eq 0 ]; then
    echo "fuzz: no reproducer in $here/known-bugs"
  fi
  [ "$bad" -eq 0 ]
}

if [ "${1:-}" = --known-bugs ]; then
  [ $# -eq 2 ] || usage
  known_bugs "$2"
  exit $?
fi
[ $# -ge 2 ] || usage
case "$1" in
  --grow) mode=grow ;;
  --ci)   mode=ci ;;
  *)      usage ;;
esac
secs="$2"
case "$secs" in
  ''|*[!0-9]*) usage ;;
esac
[ "$secs" -gt 0 ] || usage
shift 2
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(fuzz_frame fuzz_heartbeat fuzz_session fuzz_sid fuzz_config
           fuzz_dispatch fuzz_stream fuzz_session_decode fuzz_msm)
fi

# the longest input worth trying, per target
max_len() {
  case "$1" in
    fuzz_frame)          echo 1024 ;;   # 40-byte header, a payload, a 28-byte seal
    fuzz_heartbeat)      echo 512 ;;    # SC_HB_MAX_LEN is 262; sealed: + 32
    fuzz_session)        echo 4096 ;;
    fuzz_sid)            echo 512 ;;    # SC_SID_MAX is 100
    fuzz_config)         echo 8192 ;;   # the seed blocks are up to 2.3 kB
    fuzz_dispatch)       echo 4096 ;;   # up to 64 messages; the store takes 600-byte sessions
    fuzz_stream)         echo 4096 ;;   # frames up to the 4 KiB pre-HELLO limit
    fuzz_session_decode) echo 2048 ;;
    fuzz_msm)            echo 4096 ;;   # a reply's first line is at most 512 bytes
    *)                   echo 4096 ;;
  esac
}

# executions a 30 s run must reach: 0.5-2 % of what the target ran in 30 s
# on this project's 2-core machine under ASan while tests ran beside it (in
# parentheses), so that a loaded CI machine passes and a target that stalls,
# spends its time loading the corpus, or exits early does not
min_execs_30s() {
  case "$1" in
    fuzz_frame)          echo 20000 ;;  # (4.9 M)
    fuzz_heartbeat)      echo 20000 ;;  # (7.4 M)
    fuzz_session)        echo 3000 ;;   # (190 k)
    fuzz_sid)            echo 20000 ;;  # (2.1 M)
    fuzz_config)         echo 2000 ;;   # (210 k)
    fuzz_dispatch)       echo 3000 ;;   # (200 k)
    fuzz_stream)         echo 2000 ;;   # (120 k)
    fuzz_session_decode) echo 10000 ;;  # (590 k)
    fuzz_msm)            echo 20000 ;;  # (2.1 M alone; 8.7 M in 120 s)
    *)                   echo 1000 ;;
  esac
}

seed_files() {
  # the seeds gen_seeds.c writes have names; libFuzzer names what it finds
  # by the SHA-1 of its bytes
  find "$1" -maxdepth 1 -type f | grep -vE '/[0-9a-f]{40}$' | sort
}

count_files() {
  find "$1" -maxdepth 1 -type f | wc -l
}

fail_report() {
  local t="$1" work="$2" why="$3" f
  failed+=("$t")
  echo "fuzz: $t FAILED: $why; log: $work/log"
  if [ -d "$build/crashes" ]; then
    while IFS= read -r f; do
      [ -n "$f" ] || continue
      echo "fuzz: $t: input left in $f ($(wc -c <"$f") bytes):"
      od -An -tx1 -v "$f" | head -n 20
    done < <(find "$build/crashes" -name "$t-*" -newer "$work/start" -type f)
  fi
  if [ -f "$work/log" ]; then
    echo "---- end of $t's log ----"
    tail -n 60 "$work/log"
    echo "----"
  fi
}

mkdir -p "$build/crashes" "$build/run"
failed=()
for t in "${targets[@]}"; do
  bin="$build/$t"
  dir="$corpus_root/$t"
  work="$build/run/$t"
  rm -rf "$work"
  mkdir -p "$work"
  touch "$work/start"
  min=$(( $(min_execs_30s "$t") * secs / 30 ))
  [ "$min" -gt 0 ] || min=1
  [ -n "${FUZZ_MIN_EXECS:-}" ] && min="$FUZZ_MIN_EXECS"
  if [ ! -x "$bin" ]; then
    fail_report "$t" "$work" "$bin is missing (make fuzz-build)"
    continue
  fi
  if [ ! -d "$dir" ]; then
    fail_report "$t" "$work" "its corpus directory $dir is missing (make fuzz-seeds)"
    continue
  fi
  files=$(count_files "$dir")
  if [ "$files" -eq 0 ]; then
    fail_report "$t" "$work" "its corpus directory $dir is empty (make fuzz-seeds)"
    continue
  fi
  dict=()
  [ -f "$here/$t.dict" ] && dict=(-dict="$here/$t.dict")
  opts=(-max_len="$(max_len "$t")" -timeout=25 -rss_limit_mb=2048
        -artifact_prefix="$build/crashes/$t-" "${dict[@]}")
  if [ "$mode" = ci ]; then
    # a copy: what the run finds stays in fuzz/build/run
    mkdir -p "$work/corpus"
    if ! cp -p "$dir"/* "$work/corpus/"; then
      fail_report "$t" "$work" "its corpus $dir could not be copied"
      continue
    fi
    dirs=("$work/corpus")
  else
    # new inputs into an empty directory, the corpus read only
    mkdir -p "$work/new"
    dirs=("$work/new" "$dir")
  fi
  "$bin" "${opts[@]}" -max_total_time="$secs" -print_final_stats=1 "${dirs[@]}" \
    >"$work/log" 2>&1
  rc=$?
  # libFuzzer's last status line: "#N  DONE  cov: C ft: F corp: ... exec/s: S ..."
  last=$(grep -E '^#[0-9]+.*cov: ' "$work/log" | tail -n 1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -n 1)
  loaded=$(sed -n 's/^INFO: seed corpus: files: \([0-9]*\).*/\1/p' "$work/log" | tail -n 1)
  cov=$(printf '%s\n' "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
  ft=$(printf '%s\n' "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
  if [ "$mode" = ci ]; then
    found=$(( $(count_files "$work/corpus") - files ))
  else
    found=$(count_files "$work/new")
  fi
  printf 'fuzz: %-20s %9s execs (min %s) %7s exec/s  cov: %-5s ft: %-6s corpus: %s files, %s new\n' \
    "$t" "${execs:-?}" "$min" "${speed:-?}" "${cov:-?}" "${ft:-?}" "$files" "$found"
  if [ $rc -ne 0 ]; then
    fail_report "$t" "$work" "libFuzzer exit $rc"
    continue
  fi
  if [ -z "$execs" ] || [ "$execs" -lt "$min" ]; then
    fail_report "$t" "$work" "${execs:-no} executions, fewer than its minimum $min in $secs s"
    continue
  fi
  if [ "${loaded:-0}" -ne "$files" ]; then
    fail_report "$t" "$work" "libFuzzer loaded ${loaded:-no} of the $files corpus files (it skips empty ones)"
    continue
  fi
  if [ "$mode" = grow ]; then
    # seeds + everything found so far + this run's, minimised into merged/
    mkdir -p "$work/merged"
    while IFS= read -r f; do
      cp -p "$f" "$work/merged/"
    done < <(seed_files "$dir")
    "$bin" "${opts[@]}" -set_cover_merge=1 "$work/merged" "$dir" "$work/new" \
      >"$work/merge.log" 2>&1
    rc=$?
    if [ $rc -ne 0 ]; then
      cp "$work/merge.log" "$work/log"
      fail_report "$t" "$work" "the merge into the corpus failed (libFuzzer exit $rc)"
      continue
    fi
    added=0
    removed=0
    for f in "$work/merged"/*; do
      b=$(basename "$f")
      if [ ! -e "$dir/$b" ]; then
        cp -p "$f" "$dir/$b"
        added=$((added + 1))
      fi
    done
    for f in "$dir"/*; do
      b=$(basename "$f")
      if [ ! -e "$work/merged/$b" ]; then
        rm -f "$f"
        removed=$((removed + 1))
      fi
    done
    echo "fuzz: $t: corpus $dir: $files -> $(count_files "$dir") files" \
         "(+$added new, -$removed covered by others)"
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (${secs} s per target)"
  exit 1
fi
echo "fuzz: ${#targets[@]} targets clean, ${secs} s each"
if [ "$mode" = grow ]; then
  echo "fuzz: the corpus in $corpus_root is updated: commit it (git add -A fuzz/corpus)"
fi
