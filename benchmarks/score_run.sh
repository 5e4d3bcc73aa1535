#!/usr/bin/env bash
# Score one training run for issue 19's tables (RESULTS.md): its own test split and the study's
# test split per mixture part (ionfno evaluate, last checkpoint, no speed/reference/OOD extras;
# benchmarks/table_per_part.py prints the tables), and the held-out benchmark (ionfno heldout,
# seed 20261206) at N samples per kind, written to runs/heldout-$(basename RUN).
# Usage: bash benchmarks/score_run.sh RUN DATA.h5 STUDY.h5 N_PER_KIND LABEL
# (rollout_levers.sh and part_weights.sh call it after each training run; 2 threads.)
set -euo pipefail
cd "$(dirname "$0")/.."
run=$1; data=$2; study=$3; n_kind=$4; label=$5
OMP_NUM_THREADS=2 ionfno evaluate $run --data $data --out $run-eval --which last --speed-samples 0 \
    --reference-samples 0 --ood-per-kind 0
OMP_NUM_THREADS=2 ionfno evaluate $run --data $study --out $run-eval-study --which last --speed-samples 0 \
    --reference-samples 0 --ood-per-kind 0
OMP_NUM_THREADS=2 ionfno heldout $label=$run --checkpoint last --n-per-kind $n_kind \
    --out runs/heldout-$(basename $run)
python benchmarks/table_per_part.py $run-eval
python benchmarks/table_per_part.py $run-eval-study
