#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang in build-fuzz and runs each for the given
# number of seconds (default 60), two at a time, on a scratch copy of the committed seed corpus
# (new corpus files never land in the repo). Prints the executions per target and exits non-zero
# on any crash, sanitizer report, leak, timeout or OOM; the offending input is kept in
# build-fuzz/fuzz-artifacts/ and printed (hex) so CI logs hold it too.
#   scripts/fuzz.sh [seconds-per-target]        e.g. scripts/fuzz.sh 60 (CI), scripts/fuzz.sh 300
# Needs clang and the libFuzzer runtime (Debian: clang-14 libclang-rt-14-dev).
# Env: FUZZ_JOBS (targets run at once, default 2), FUZZ_TARGETS (default: all three),
#      EDGELINE_FUZZ_BUILD_DIR (default build-fuzz).
set -euo pipefail

SECONDS_PER_TARGET="${1:-60}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${EDGELINE_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
JOBS="${FUZZ_JOBS:-2}"
read -r -a TARGETS <<<"${FUZZ_TARGETS:-fuzz_mapping fuzz_line_protocol fuzz_env}"
ARTIFACTS="$BUILD/fuzz-artifacts"

# Largest input per target: a few times the biggest realistic case, small enough to stay fast.
max_len() {
  case "$1" in
    fuzz_mapping) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

CC_BIN=""
CXX_BIN=""
for v in "" -14; do
  if command -v "clang++$v" >/dev/null 2>&1; then
    CC_BIN="clang$v"
    CXX_BIN="clang++$v"
    break
  fi
done
if [ -z "$CXX_BIN" ]; then
  echo "fuzz.sh: clang++ not found (Debian: apt-get install clang-14 libclang-rt-14-dev)" >&2
  exit 2
fi
probe="$(mktemp -d)"
trap 'rm -rf "$probe"' EXIT
printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' >"$probe/p.cc"
if ! "$CXX_BIN" -fsanitize=fuzzer,address,undefined "$probe/p.cc" -o "$probe/p" >"$probe/log" 2>&1; then
  cat "$probe/log" >&2
  echo "fuzz.sh: $CXX_BIN cannot link libFuzzer (Debian: apt-get install libclang-rt-14-dev)" >&2
  exit 2
fi

start=$(date +%s)
cmake -S "$ROOT" -B "$BUILD" -DEDGELINE_FUZZ=ON -DEDGELINE_BUILD_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER="$CC_BIN" -DCMAKE_CXX_COMPILER="$CXX_BIN" >/dev/null
cmake --build "$BUILD" -j2 --target "${TARGETS[@]}"
echo "fuzz.sh: built ${TARGETS[*]} in $(( $(date +%s) - start ))s"

WORK="$(mktemp -d)"
trap 'rm -rf "$probe" "$WORK"' EXIT
mkdir -p "$ARTIFACTS"
# A smaller quarantine keeps ASan's RSS well under -rss_limit_mb, so the limit measures the
# parsers' own memory; leaks are reported (libFuzzer's default) and fail the run.
export ASAN_OPTIONS="${ASAN_OPTIONS:-quarantine_size_mb=32:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

run_target() {
  local t="$1"
  mkdir -p "$WORK/$t/corpus"
  cp "$ROOT/tests/fuzz/corpus/$t/"* "$WORK/$t/corpus/"
  "$BUILD/tests/fuzz/$t" "$WORK/$t/corpus" \
    -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=512 -timeout=25 -max_len="$(max_len "$t")" \
    -dict="$ROOT/tests/fuzz/$t.dict" -artifact_prefix="$ARTIFACTS/$t-" -print_final_stats=1 \
    >"$WORK/$t.log" 2>&1 && echo 0 >"$WORK/$t.rc" || echo $? >"$WORK/$t.rc"
}

# At most $JOBS targets at once; each writes its exit code to $WORK/<target>.rc.
running=0
for t in "${TARGETS[@]}"; do
  if [ "$running" -ge "$JOBS" ]; then
    wait -n || true
    running=$((running - 1))
  fi
  echo "fuzz.sh: running $t for ${SECONDS_PER_TARGET}s"
  run_target "$t" &
  running=$((running + 1))
done
wait

failed=0
for t in "${TARGETS[@]}"; do
  log="$WORK/$t.log"
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  [ -n "$execs" ] || execs="$(sed -n 's/^#\([0-9]*\)[[:space:]]*DONE.*/\1/p' "$log" | tail -1)"
  cov="$(sed -n 's/^#[0-9]*[[:space:]]*DONE[[:space:]]*cov: \([0-9]*\).*/\1/p' "$log" | tail -1)"
  rc="$(cat "$WORK/$t.rc" 2>/dev/null || echo 99)"
  if [ "$rc" -eq 0 ]; then
    printf 'fuzz.sh: %-20s ok      executions=%s coverage=%s\n' "$t" "${execs:-?}" "${cov:-?}"
  else
    failed=1
    printf 'fuzz.sh: %-20s FAILED  exit=%s executions=%s\n' "$t" "$rc" "${execs:-?}"
    echo "----- $t: end of libFuzzer log -----"
    grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)' "$log" | tail -60
    for a in "$ARTIFACTS/$t-"*; do
      [ -e "$a" ] || continue
      echo "----- saved input $a ($(wc -c <"$a") bytes; replay: $BUILD/tests/fuzz/$t $a) -----"
      head -c 2048 "$a" | od -A d -c | head -40
    done
  fi
done
echo "fuzz.sh: total $(( $(date +%s) - start ))s"
exit "$failed"
