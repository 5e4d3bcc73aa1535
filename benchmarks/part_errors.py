"""A surrogate's error per dataset part on its training split next to its test split.

Tells fitting from generalising: a part learned on the training samples (low error there) but
not on the test samples of the same distribution wants more data or a better inductive bias,
not a bigger model or more epochs. The study's metric (relative L2 over time in the point-wise
normalised space of the dataset's training split, mean over states, then over samples), on the
first ``--max-per-part`` samples of each part of each split, the inputs as training reads them
(every ``subsample``-th point of the stored current: runs with ``data.input_encoding = point``).

    OMP_NUM_THREADS=1 python benchmarks/part_errors.py runs/abl-fhn-a data/fhn-gen-12k.h5 \\
        --parts noise train shifted general
"""

from __future__ import annotations

import argparse
import os
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ionfno.evaluation.metrics import compute_errors  # noqa: E402
from ionfno.evaluation.pipeline import training_statistics  # noqa: E402
from ionfno.surrogate import ExtrapolationWarning, Surrogate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="run folder (or pretrained name) trained on DATA")
    ap.add_argument("data", help="the dataset file it was trained on")
    ap.add_argument("--parts", nargs="+", default=["noise", "train", "shifted", "general"])
    ap.add_argument("--max-per-part", type=int, default=200)
    ap.add_argument("--checkpoint", choices=["best", "last"], default="last")
    args = ap.parse_args()

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    sur = Surrogate.load(args.run, which=args.checkpoint)
    if sur.input_encoding != "point":
        raise SystemExit(f"{args.run}: input encoding {sur.input_encoding!r}; this feeds stored points")
    sub = int(sur.info["subsample"])
    mean, std = training_statistics(args.data, subsample=sub)
    print(f"{'split':<6} {'part':<10} {'n':>4} {'rel_l2 %':>9}")
    with h5py.File(args.data, "r") as f:
        for split in ("train", "test"):
            part = f[f"{split}/part"][:].astype(str)
            status = f[f"{split}/status"][:]
            for name in args.parts:
                idx = np.flatnonzero((part == name) & (status == 0))[: args.max_per_part]
                if idx.size == 0:
                    continue
                i_app = f[f"{split}/i_app"][idx][:, ::sub]
                states = f[f"{split}/states"][idx][:, :, ::sub]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ExtrapolationWarning)
                    pred = sur.predict_array(i_app, strict=False)
                e = compute_errors(pred, states, mean=mean, std=std, state_names=list(sur.state_names))
                err = 100 * np.mean(e.sample_overall())
                print(f"{split:<6} {name:<10} {idx.size:>4} {err:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
