#!/usr/bin/env bash
# Runs postern's fuzz targets with cargo-fuzz (libFuzzer) on the stable toolchain.
#
#   scripts/fuzz.sh [TARGET|all] [RUNS]      default: all targets, 1000000 executions each
#   scripts/fuzz.sh cmin [TARGET|all]        minimise the corpus, keeping the seed-* files
#
# Each target runs alone (one libFuzzer process, no -jobs), niced, from its committed corpus
# (fuzz/corpus/<target>/; new inputs are added there, so minimise afterwards). A crash stops the
# script with libFuzzer's report; the input is in fuzz/artifacts/<target>/. Each run's output is
# kept in fuzz/logs/<target>.full.log; its final stats line (executions, cov, ft, corpus) is
# printed.
set -euo pipefail
cd "$(dirname "$0")/.."

# libFuzzer needs no nightly feature once built; RUSTC_BOOTSTRAP lets cargo-fuzz pass its -Z
# flags to the stable compiler. No sanitizer (ASan needs nightly); -a keeps debug assertions and
# overflow checks on, so an arithmetic overflow is a crash.
export RUSTC_BOOTSTRAP=1
build_flags=(--sanitizer none -a)

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

mode=run
if [ "${1:-}" = cmin ]; then
  mode=cmin
  shift
fi
target=${1:-all}
runs=${2:-1000000}

if [ "$target" = all ]; then
  mapfile -t targets < <(cd fuzz && cargo fuzz list)
else
  targets=("$target")
fi

nice -n 10 cargo fuzz build "${build_flags[@]}"
bin=fuzz/target/x86_64-unknown-linux-gnu/release
mkdir -p fuzz/logs

if [ "$mode" = cmin ]; then
  # libFuzzer's merge into a corpus that holds only the seeds: what fuzzing found is kept only
  # where it adds coverage. -use_counters=0 counts edges, not hit counts, which keeps the
  # committed corpus to a few hundred files per target.
  for t in "${targets[@]}"; do
    dir=fuzz/corpus/$t
    new=$(mktemp -d)
    cp "$dir"/seed-* "$new"/ 2>/dev/null || true
    nice -n 10 "$bin/$t" -merge=1 -use_counters=0 -timeout=10 "$new" "$dir" >"fuzz/logs/$t.cmin.log" 2>&1
    rm -rf "$dir"
    mv "$new" "$dir"
    chmod 755 "$dir"
    echo "$t: $(ls "$dir" | wc -l) files, $(du -sk "$dir" | cut -f1) KiB" >&2
  done
  exit 0
fi

for t in "${targets[@]}"; do
  echo "== $t: $runs runs" >&2
  mkdir -p "fuzz/corpus/$t"
  start=$(date +%s)
  set +e
  nice -n 10 cargo fuzz run "${build_flags[@]}" "$t" "fuzz/corpus/$t" -- \
    -runs="$runs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 -print_final_stats=1 \
    >"fuzz/logs/$t.full.log" 2>&1
  status=$?
  set -e
  echo "wall_seconds: $(($(date +%s) - start))" >>"fuzz/logs/$t.full.log"
  if [ "$status" != 0 ]; then
    tail -n 60 "fuzz/logs/$t.full.log" >&2
    echo "fuzz.sh: $t failed (status $status); the input is in fuzz/artifacts/$t/" >&2
    exit "$status"
  fi
  grep -E '^#[0-9]+[[:space:]]+DONE|^Done|average_exec_per_sec|^wall_seconds' "fuzz/logs/$t.full.log" >&2 || true
done
