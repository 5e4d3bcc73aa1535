#!/usr/bin/env bash
# Issue 19, the data lever on FitzHugh-Nagumo (RESULTS.md, "Levers for fast pacing and random
# currents"): the random currents are learned on the training split (13 % there) but not on
# held-out draws (52-54 %), so the small fhn-quick FNO of benchmarks/ablate_fhn_general.sh
# (channel input normaliser) is trained on 4x the fhn-general mixture (48000 samples, same
# parts in the same proportions) twice: for the same number of optimiser steps as the 12000-sample
# base run (5 epochs: more distinct samples, same compute) and for 4x the steps (20 epochs), and
# once more for 5 epochs with 64 Fourier modes instead of 24 (the random currents reach 0.5
# cycles per unit time, 50 per window: are the modes the limit?); then the held-out benchmark of
# all three next to the base run (runs/abl-fhn-a of the ablation script). Then shift-equivariance:
# the 5-epoch run without the t/T input channel and with channel normalisers for the states too,
# without and with zero padding as long as the window (the padding shows the model where the
# window starts, which a circularly equivariant model cannot know), scored in the point-wise space
# of the training split (heldout --statistics; compare these on rmse_V and APD90, see RESULTS);
# and the padded run once more with the study's point-wise state normaliser (no t/T channel).
# About 115 minutes on 2 cores (generation 1 min, training 10, 32, 12, 9, 12 and 12 min).
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
ionfno train data/fhn-gen-48k.h5 $COMMON --set train.epochs=5 --set train.val_every=1 --set data.normalization=channel \
    --set model.time_channel=false --out runs/scale-fhn-48k-5-shift
ionfno train data/fhn-gen-48k.h5 $COMMON --set train.epochs=5 --set train.val_every=1 --set data.normalization=channel \
    --set model.time_channel=false --set model.padding=1260 --out runs/scale-fhn-48k-5-shift-pad
ionfno train data/fhn-gen-48k.h5 $COMMON --set train.epochs=5 --set train.val_every=1 \
    --set model.time_channel=false --set model.padding=1260 --out runs/scale-fhn-48k-5-notime-pad
OMP_NUM_THREADS=2 ionfno heldout data4x_same_steps=runs/scale-fhn-48k-5 shift_equivariant=runs/scale-fhn-48k-5-shift \
    shift_equivariant_padded=runs/scale-fhn-48k-5-shift-pad no_time_channel_padded=runs/scale-fhn-48k-5-notime-pad \
    --statistics data/fhn-gen-48k.h5 --checkpoint last --out runs/heldout-shift-fhn --threads 2
