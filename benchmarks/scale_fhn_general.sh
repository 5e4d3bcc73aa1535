#!/usr/bin/env bash
# Issue 19, the data lever on FitzHugh-Nagumo (RESULTS.md, "Levers for fast pacing and random
# currents"): the random currents are learned on the training split (13 % there) but not on
# held-out draws (52-54 %), so the small fhn-quick FNO of benchmarks/ablate_fhn_general.sh
# (channel input normaliser) is trained on 4x the fhn-general mixture (48000 samples, same
# parts in the same proportions) twice: for the same number of optimiser steps as the 12000-sample
# base run (5 epochs: more distinct samples, same compute) and for 4x the steps (20 epochs), and
# once more for 5 epochs with 64 Fourier modes instead of 24 (the random currents reach 0.5
# cycles per unit time, 50 per window: are the modes the limit?); then the held-out benchmark of
# all three next to the base run (runs/abl-fhn-a of the ablation script).
# About 70 minutes on 2 cores (generation 1 min, training 10, 32 and 12 min).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
mkdir -p data runs
COMMON="--preset fhn-quick --set data.input_normalization=channel --device cpu --no-progress"
[ -f data/fhn-gen-48k.h5 ] || ionfno generate fhn --mixture fhn-general --n-train 48000 --out data/fhn-gen-48k.h5 \
    --workers 2 --no-progress
[ -d runs/abl-fhn-a ] || ionfno train data/fhn-gen-12k.h5 $COMMON --set train.epochs=20 --set train.val_every=4 \
    --out runs/abl-fhn-a
ionfno train data/fhn-gen-48k.h5 $COMMON --set train.epochs=5 --set train.val_every=1 --out runs/scale-fhn-48k-5
ionfno train data/fhn-gen-48k.h5 $COMMON --set train.epochs=20 --set train.val_every=4 --out runs/scale-fhn-48k-20
ionfno train data/fhn-gen-48k.h5 $COMMON --set train.epochs=5 --set train.val_every=1 --set model.n_modes=64 \
    --out runs/scale-fhn-48k-5-m64
OMP_NUM_THREADS=2 ionfno heldout base=runs/abl-fhn-a data4x_same_steps=runs/scale-fhn-48k-5 \
    data4x_4x_steps=runs/scale-fhn-48k-20 data4x_same_steps_64_modes=runs/scale-fhn-48k-5-m64 \
    --checkpoint last --out runs/heldout-scale-fhn --threads 2
