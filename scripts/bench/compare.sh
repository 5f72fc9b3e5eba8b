#!/usr/bin/env bash
# Runs the PyTorch and the candle embedding benchmarks with one thread count, one after the other, on
# the same weights file, and prints the side-by-side tables (see benches/README.md).
#
#   scripts/bench/compare.sh [THREADS] [-- extra options for the candle bench]
#
# THREADS defaults to the number of cores. PYTHON (default: python) must have torch and open_clip
# installed (scripts/requirements.txt). BATCHES (default 8,32), TEXT_BATCHES (default 1,32) and
# MIN_SECONDS (default 10) apply to both sides. The combined results are also written to target/fitcheck-bench/compare.json.
set -euo pipefail

cd "$(dirname "$0")/../.."
threads="${1:-$(nproc)}"
[ "$#" -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
python="${PYTHON:-python}"
batches="${BATCHES:-8,32}"
text_batches="${TEXT_BATCHES:-1,32}"
min_seconds="${MIN_SECONDS:-10}"
out=target/fitcheck-bench
mkdir -p "$out"

echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (should be near 0 before a measurement)" >&2

# Build, and write the checkpoint both sides load, before timing anything.
cargo bench --bench embed --no-run >&2
checkpoint="$(cargo bench --bench embed -q -- --prepare)"

# Same thread count on both sides: torch.set_num_threads for PyTorch, RAYON_NUM_THREADS for candle.
# OMP/MKL variables pin the PyTorch side further, so nothing oversubscribes the cores.
OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads" \
    "$python" scripts/bench/torch_embed.py --threads "$threads" --batches "$batches" \
    --text-batches "$text_batches" --min-seconds "$min_seconds" --weights "$checkpoint" >"$out/torch.json"

cargo bench --bench embed -- --threads "$threads" --batches "$batches" --text-batches "$text_batches" \
    --min-seconds "$min_seconds" --torch "$out/torch.json" --json "$out/compare.json" "$@"
