#!/usr/bin/env bash
# Issue 19, two levers on the causal rollout of benchmarks/rollout_general.sh (RESULTS.md,
# "Random currents: a causal rollout"), each against that script's FHN run (runs/fhn-gen-roll,
# K = 126, 2700 s) or HH run (runs/hh-gen-roll, 2100 s) at the same recipe and budget:
#   fhn-k63  the chunk length: K = 63 grid intervals (5 time units) instead of 126;
#   fhn-tf   teacher forcing (train.teacher_forcing_epochs): the first half of the epochs train
#            the chunk map from the true states (all chunks of a window in one batched call,
#            cheaper than the sequential rollout), the second half end to end through it;
#   hh-tf    the same on HH;
#   fhn-tf-cont  fhn-tf continued from its last weights (--init) for 2100 s at a peak learning
#            rate of 5e-4, end to end: as rollout_general.sh's fhn-cont did for the plain rollout,
#            so that both come to about the shipped fhn-general's 79 minutes (71-75 min);
#   hh-tf-cont  hh-tf continued the same way for 1500 s (about 60 min in all; the shipped
#            hh-general had 106);
#   fhn-k127-cont  fhn-tf-cont (the first shipped fhn-causal) continued for 5400 s more with K = 127 grid
#            intervals (a 128-point chunk grid: a power of two, 27-38 % cheaper FFTs than 127
#            points) and a gentler restart (peak 3e-4, 3 % warm-up), end to end; scored like the
#            others plus the held-out benchmark at 64 per kind (as fhn-tf-extra);
#   fhn-k127-cont2  fhn-k127-cont continued once more the same way (5400 s, K = 127) at a peak lr
#            of 2e-4: does the random-current error keep falling with the fit?
#   ord-roll  the rollout on ORd (41 states): ord-general-1core's FNO as the chunk map (K = 127,
#            no padding; 48 modes), 2 ranks of 1 thread, the first half of the epochs teacher-
#            forced, 2700 s, against the shipped ord-general (72 min, one core, no rollout);
#   hh-k127-cont  hh-tf-cont continued end to end at K = 127, peak 3e-4, 3 % warm-up, for 2400 s (the
#            FHN lesson of fhn-k127-cont, on HH: about 94 minutes in all against hh-general's 106);
#   fhn-weighted  fhn-k127-cont2 continued for 2700 s at peak 1e-4 with the study's parts (t0, general,
#            nap, t_fin) drawn 3x as often as the new kinds (train.part_weights): does weighting
#            close the gap on the study's test split without losing the new kinds? It starts from
#            fhn-k127-cont2's last weights as float16, the pretrained fhn-causal of commit 6965035
#            (extracted with git show into runs/fhn-causal-6965035.pt; since shipped as fhn-causal
#            itself), so it runs on a clone without the earlier parts' run folders.
#   fhn-weighted2  fhn-weighted continued for 1800 s at peak 1e-4 with the study's parts drawn 6x as
#            often: does more weight close more of the study split's gap?
#   fhn-noise3  fhn-weighted continued for 1500 s at peak 1e-4 with the random currents (noise)
#            drawn 3x as often instead: what does weighting buy the kind furthest from the goal?
#   hh-weighted  hh-k127-cont continued for 2100 s at peak 2e-4 (3 % warm-up) with the study's five parts
#            (t0, general, nap, i_high, t_fin) drawn 3x as often as the new kinds: the HH rollout is
#            further from the study's split (6.9 %) than hh-general (2.6 %); scored at 64 per kind.
#   fhn-tf-extra  both teacher-forced FHN runs on 64 held-out samples per kind (the same seed as
#            rollout_general.sh's fhn-extra, which scored the shipped fhn-general and the plain
#            rollouts on them).
# Each part trains (an interrupted run resumes, a finished one is left as it is), then scores the run on its own test split per
# part, on the study's test split, on the held-out benchmark (16 per kind) and on its training
# split next to its test split (benchmarks/part_errors.py). About 50 minutes a part on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
COMMON="--set train.lr=0.001 --set train.grad_clip=1.0 --device cpu --no-progress"
parts=${*:-fhn-k63 fhn-tf hh-tf fhn-tf-cont hh-tf-cont fhn-tf-extra fhn-k127-cont ord-roll fhn-k127-cont2 hh-k127-cont fhn-weighted fhn-weighted2 fhn-noise3 hh-weighted}
for p in $parts; do
    case $p in
        fhn-k63) data=data/fhn-gen-12k.h5; study=data/fhn.h5; run=runs/fhn-gen-roll-k63
                 args="--preset fhn-general-2h --set model.chunk=63 --set train.time_limit_s=2700" ;;
        fhn-tf) data=data/fhn-gen-12k.h5; study=data/fhn.h5; run=runs/fhn-gen-roll-tf
                args="--preset fhn-general-2h --set model.chunk=126 --set train.teacher_forcing_epochs=22 --set train.time_limit_s=2700" ;;
        hh-tf) data=data/hh-gen-12k.h5; study=data/hh-12k.h5; run=runs/hh-gen-roll-tf
               args="--preset hh-general-2h --set model.chunk=126 --set train.teacher_forcing_epochs=52 --set train.time_limit_s=2100" ;;
        hh-tf-cont) data=data/hh-gen-12k.h5; study=data/hh-12k.h5; run=runs/hh-gen-roll-tf-cont
                args="--preset hh-general-2h --set model.chunk=126 --set train.time_limit_s=1500 --set train.lr=0.0005 --init runs/hh-gen-roll-tf" ;;
        fhn-tf-extra) OMP_NUM_THREADS=2 ionfno heldout tf=runs/fhn-gen-roll-tf tf_cont=runs/fhn-gen-roll-tf-cont \
                --n-per-kind 64 --restitution-points 0 --checkpoint last --out runs/heldout-fhn-tf-64
            continue ;;
        fhn-tf-cont) data=data/fhn-gen-12k.h5; study=data/fhn.h5; run=runs/fhn-gen-roll-tf-cont
                args="--preset fhn-general-2h --set model.chunk=126 --set train.time_limit_s=2100 --set train.lr=0.0005 --init runs/fhn-gen-roll-tf" ;;
        fhn-k127-cont) data=data/fhn-gen-12k.h5; study=data/fhn.h5; run=runs/fhn-gen-roll-k127-cont
                args="--preset fhn-general-2h --set model.chunk=127 --set train.time_limit_s=5400 --set train.lr=0.0003 --set train.warmup_fraction=0.03 --init runs/fhn-gen-roll-tf-cont" ;;
        fhn-k127-cont2) data=data/fhn-gen-12k.h5; study=data/fhn.h5; run=runs/fhn-gen-roll-k127-cont2
                args="--preset fhn-general-2h --set model.chunk=127 --set train.time_limit_s=5400 --set train.lr=0.0002 --set train.warmup_fraction=0.03 --init runs/fhn-gen-roll-k127-cont" ;;
        hh-k127-cont) data=data/hh-gen-12k.h5; study=data/hh-12k.h5; run=runs/hh-gen-roll-k127-cont
                args="--preset hh-general-2h --set model.chunk=127 --set train.time_limit_s=2400 --set train.lr=0.0003 --set train.warmup_fraction=0.03 --init runs/hh-gen-roll-tf-cont" ;;
        fhn-weighted) data=data/fhn-gen-12k.h5; study=data/fhn.h5; run=runs/fhn-gen-roll-weighted
                args="--preset fhn-general-2h --set model.chunk=127 --set train.time_limit_s=2700 --set train.lr=0.0001 --set train.warmup_fraction=0.03 --set train.part_weights=t0=3,general=3,nap=3,t_fin=3 --init runs/fhn-causal-6965035.pt"
            mkdir -p runs
            [ -f runs/fhn-causal-6965035.pt ] || git show 6965035:src/ionfno/pretrained/fhn-causal/surrogate.pt \
                > runs/fhn-causal-6965035.pt ;;
        fhn-weighted2) data=data/fhn-gen-12k.h5; study=data/fhn.h5; run=runs/fhn-gen-roll-weighted2
                args="--preset fhn-general-2h --set model.chunk=127 --set train.time_limit_s=1800 --set train.lr=0.0001 --set train.warmup_fraction=0.03 --set train.part_weights=t0=6,general=6,nap=6,t_fin=6 --init runs/fhn-gen-roll-weighted" ;;
        fhn-noise3) data=data/fhn-gen-12k.h5; study=data/fhn.h5; run=runs/fhn-gen-roll-noise3
                args="--preset fhn-general-2h --set model.chunk=127 --set train.time_limit_s=1500 --set train.lr=0.0001 --set train.warmup_fraction=0.03 --set train.part_weights=noise=3 --init runs/fhn-gen-roll-weighted" ;;
        hh-weighted) data=data/hh-gen-12k.h5; study=data/hh-12k.h5; run=runs/hh-gen-roll-weighted
                args="--preset hh-general-2h --set model.chunk=127 --set train.time_limit_s=2100 --set train.lr=0.0002 --set train.warmup_fraction=0.03 --set train.part_weights=t0=3,general=3,nap=3,i_high=3,t_fin=3 --init runs/hh-gen-roll-k127-cont" ;;
        ord-roll) data=data/ord-gen-12k.h5; study=data/ord.h5; run=runs/ord-gen-roll
                args="--preset ord-general-1core --set model.chunk=127 --set model.padding=0 --set train.workers=2 --set train.epochs=200 --set train.teacher_forcing_epochs=100 --set train.time_limit_s=2700" ;;
        *) echo "unknown part $p (fhn-k63, fhn-tf, hh-tf, fhn-tf-cont, hh-tf-cont, fhn-tf-extra, fhn-k127-cont, ord-roll, fhn-k127-cont2, hh-k127-cont, fhn-weighted, fhn-weighted2, fhn-noise3, hh-weighted)"; exit 2 ;;
    esac
    /usr/bin/time -v ionfno train $data $COMMON $args --out $run
    case $p in fhn-k127-cont* | *-weighted* | fhn-noise*) n_kind=64 ;; *) n_kind=16 ;; esac  # 64: as fhn-tf-extra
    bash benchmarks/score_run.sh $run $data $study $n_kind rollout
    if [ "${p%%-*}" = fhn ]; then  # part_errors.py reads stored points; HH's runs average cells
        python benchmarks/part_errors.py $run $data --parts noise train s1s2 general
    fi
done
