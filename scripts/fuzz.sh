#!/usr/bin/env bash
# Runs postern's fuzz targets with cargo-fuzz (libFuzzer) on the stable toolchain.
#
#   scripts/fuzz.sh [TARGET|all] [RUNS]      default: all targets, 1000000 executions each
#
# Each target runs alone (one job), niced, from its committed corpus (fuzz/corpus/<target>/, new
# inputs are added there; minimise it afterwards, see fuzz/README.md). A crash stops the script
# with libFuzzer's report; the input is in fuzz/artifacts/<target>/. The last lines of each run
# (libFuzzer's final stats: executions, cov, ft, corpus) are kept in fuzz/logs/<target>.log.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${1:-all}
runs=${2:-1000000}

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

# libFuzzer needs no nightly feature once built; RUSTC_BOOTSTRAP lets cargo-fuzz pass its -Z
# flags to the stable compiler. No sanitizer (ASan needs nightly); -a keeps debug assertions and
# overflow checks on, so an arithmetic overflow is a crash.
export RUSTC_BOOTSTRAP=1
fuzz=(cargo fuzz)
build_flags=(--sanitizer none -a)

if [ "$target" = all ]; then
  mapfile -t targets < <(cd fuzz && cargo fuzz list)
else
  targets=("$target")
fi

nice -n 10 "${fuzz[@]}" build "${build_flags[@]}"
mkdir -p fuzz/logs
for t in "${targets[@]}"; do
  echo "== $t: $runs runs" >&2
  mkdir -p "fuzz/corpus/$t"
  start=$(date +%s)
  nice -n 10 "${fuzz[@]}" run "${build_flags[@]}" "$t" "fuzz/corpus/$t" -- \
    -runs="$runs" -jobs=1 -workers=1 -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -malloc_limit_mb=512 -print_final_stats=1 2>&1 | tee "fuzz/logs/$t.full.log" | tail -n 40 >"fuzz/logs/$t.log"
  status=${PIPESTATUS[0]}
  end=$(date +%s)
  echo "wall_seconds: $((end - start))" >>"fuzz/logs/$t.log"
  if [ "$status" != 0 ]; then
    cat "fuzz/logs/$t.log" >&2
    echo "fuzz.sh: $t failed (status $status); the input is in fuzz/artifacts/$t/" >&2
    exit "$status"
  fi
  grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec)|#[0-9]+.*DONE' "fuzz/logs/$t.log" >&2 || true
done
