"""A trained rollout's validation error when it steps with another chunk length, untrained.

A chunk map learns the flow over a chunk of ``K`` grid intervals; fine-tuning it at another ``K``
(``ionfno train --init RUN --set model.chunk=K``) starts from this error. The study's metric on
the run's validation split, as training reports it (``val_loss`` in metrics.csv), for each
``K`` given; the run's own ``K`` reproduces its last validation entry.

    OMP_NUM_THREADS=1 python benchmarks/chunk_length_eval.py runs/fhn-gen-roll-tf-cont \\
        data/fhn-gen-12k.h5 126 127
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from ionfno.fno import ChunkedRollout  # noqa: E402
from ionfno.surrogate import Surrogate  # noqa: E402
from ionfno.training.config import config_from_dict  # noqa: E402
from ionfno.training.data import prepare  # noqa: E402
from ionfno.training.steps import evaluate  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="run folder of a rollout (model.chunk > 0)")
    p.add_argument("data", type=Path, help="the dataset it was trained on")
    p.add_argument("chunks", type=int, nargs="+", help="chunk lengths K [grid intervals] to try")
    p.add_argument("--which", choices=["best", "last"], default="last")
    args = p.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    model = Surrogate.load(args.run, which=args.which)._model
    if not isinstance(model, ChunkedRollout):
        raise SystemExit(f"{args.run} is not a rollout run (model.chunk = 0)")
    cfg = config_from_dict(json.loads((args.run / "config.json").read_text()))
    data = prepare(cfg, args.data)
    print(f"run {args.run} (trained at K = {model.chunk}), {len(data.val.x)} validation samples")
    for k in args.chunks:
        if k < 1:
            raise SystemExit(f"chunk lengths must be >= 1, got {k}")
        # The same chunk map and statistics stepping at K (weights load across chunk lengths).
        at_k = ChunkedRollout(model.chunk_map, model.n_states, k)
        at_k.load_state_dict(model.state_dict())
        err = evaluate(at_k, data.val.x, data.val.y, batch_size=128, device=torch.device("cpu"))
        print(f"K = {k:4d}: validation {100 * float(err.mean()):.2f} %", flush=True)


if __name__ == "__main__":
    main()
