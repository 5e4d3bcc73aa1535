#!/usr/bin/env bash
# Issue 19 lever ablation on FitzHugh-Nagumo (RESULTS.md, "Levers for fast pacing and random
# currents"): the small fhn-quick FNO with the channel input normaliser, 20 epochs on 12000
# samples of the fhn-general mixture, three ways: as is (base), with 1260 points of zero padding
# (as long as the signal, so the spectral convolution no longer wraps the end of the window onto
# its start; its kernel stays two-sided, so this removes the periodic part of the acausality
# only: causal_pad), and on a mixture with 3.1x the random-current training samples at the same
# total (noise4, benchmarks/fhn-general-noise4.json); then the held-out benchmark of all three.
# About 35 minutes on 2 cores (training 9.5, 12 and 9 min).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
mkdir -p data runs
COMMON="--preset fhn-quick --set data.input_normalization=channel --set train.epochs=20 --set train.val_every=4 --device cpu --no-progress"
[ -f data/fhn-gen-12k.h5 ] || ionfno generate fhn --mixture fhn-general --n-train 12000 --out data/fhn-gen-12k.h5 --workers 2
[ -f data/fhn-gen-noise4.h5 ] || ionfno generate fhn --mixture benchmarks/fhn-general-noise4.json --n-train 12000 \
    --out data/fhn-gen-noise4.h5 --workers 2 --no-progress
ionfno train data/fhn-gen-12k.h5 $COMMON --out runs/abl-fhn-a
ionfno train data/fhn-gen-12k.h5 $COMMON --set model.padding=1260 --out runs/abl-fhn-b
ionfno train data/fhn-gen-noise4.h5 $COMMON --out runs/abl-fhn-c
OMP_NUM_THREADS=2 ionfno heldout base=runs/abl-fhn-a causal_pad=runs/abl-fhn-b noise4=runs/abl-fhn-c \
    --checkpoint last --out runs/heldout-abl-fhn --threads 2
