#!/usr/bin/env bash
# Issue 19, causality as a lever for random currents (RESULTS.md, "Random currents: a causal
# rollout"): the general surrogates' FNO as a chunk map (model.chunk, ionfno.fno.ChunkedRollout),
# stepped from rest through the window and trained end to end through the rollout, on the same
# data and at the same size as the shipped fhn-general / hh-general; then the held-out benchmark,
# the own and the study's test splits, next to the shipped general surrogates.
# About 110 minutes on 2 cores (FHN training 45 min, HH 50 min, evaluations 10 min); pass
# "fhn" or "hh" to run one model. Needs data/fhn-gen-12k.h5, data/fhn.h5, data/hh-gen-12k.h5 and
# data/hh-12k.h5 (commands in RESULTS.md, "General surrogates").
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
models=${*:-fhn hh}
for m in $models; do
    case $m in
        fhn) data=data/fhn-gen-12k.h5; study=data/fhn.h5 ;;
        hh) data=data/hh-gen-12k.h5; study=data/hh-12k.h5 ;;
        *) echo "unknown model $m (fhn, hh)"; exit 2 ;;
    esac
    run=runs/$m-gen-roll
    [ -f $run/last.pt ] || /usr/bin/time -v ionfno train $data --preset $m-general-rollout --device cpu --no-progress --out $run
    OMP_NUM_THREADS=2 ionfno evaluate $run --data $data --out $run-eval --which last --speed-samples 64 \
        --reference-samples 2 --ood-per-kind 16
    OMP_NUM_THREADS=2 ionfno evaluate $run --data $study --out $run-eval-study --which last --speed-samples 0 \
        --reference-samples 0 --ood-per-kind 0
    OMP_NUM_THREADS=2 ionfno heldout study=$m general=$m-general rollout=$run --checkpoint last --out runs/heldout-$m-roll
    python benchmarks/table_per_part.py $run-eval-study
done
