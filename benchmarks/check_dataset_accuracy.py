"""Accuracy of a generated dataset's stored trajectories against a tight SciPy reference.

``bench_accuracy.py`` measures the solver on a mixture before data is generated; this script
checks a file that exists: for ``--per-part`` samples of every part of one split it re-solves
the stored stimulus with SciPy (Radau by default, rtol = ``--ref-tol``, atol = ref-tol x each
unit's floor) on the stored grid and prints, per part, the largest error of the stored
trajectory relative to each state's range (floors as in ``ionfno.solvers.state_floor``) and the
worst state, next to the floor that float32 storage alone sets (half a float32 ulp of the
state's values over its range: negligible for most states, but ORd's K_i and K_ss sit near
144 mM and move by only about 0.01 mM in a beat, so storage alone costs them up to 9e-4 of their
range). The bound the project asks of ground truth is 1e-3.

    OMP_NUM_THREADS=1 python benchmarks/check_dataset_accuracy.py data/ord-12k.h5 --per-part 2
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from ionfno.data.encoding import stored_stimulus  # noqa: E402
from ionfno.data.storage import dataset_info, open_dataset, read_split  # noqa: E402
from ionfno.ionic import get_model  # noqa: E402
from ionfno.solvers import ReferenceSolver, simulate, state_floor  # noqa: E402


def range_error(a: np.ndarray, ref: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """Max over time of ``|a - ref| / max(range(ref), floor)``, shape (B, n_states)."""
    scale = np.maximum(ref.max(axis=-1) - ref.min(axis=-1), floor[None, :])
    return np.max(np.abs(a - ref), axis=-1) / scale


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="dataset file (.h5) written by `ionfno generate`")
    ap.add_argument("--split", default="test")
    ap.add_argument("--per-part", type=int, default=2)
    ap.add_argument("--reference", default="Radau", choices=["Radau", "BDF"])
    ap.add_argument("--ref-tol", type=float, default=1e-10)
    args = ap.parse_args()

    info = dataset_info(args.data)
    with open_dataset(args.data) as f:
        cfg = json.loads(f.attrs["config"]) if "config" in f.attrs else {}
        t = np.asarray(f["t"][()], dtype=np.float64)
    model = get_model(info["model"])
    names = list(model.state_names)
    floor = state_floor(model)
    parts = read_split(args.data, args.split, states=[names[0]])["part"]
    print(f"{args.data}: model {info['model']}, {t.shape[0]} points over {t[-1]:g}, split {args.split}, "
          f"solver {cfg.get('solver', {}).get('method', '?')} rtol {cfg.get('solver', {}).get('rtol', '?')}; "
          f"reference {args.reference} {args.ref_tol:g}")
    worst_all = 0.0
    for part in sorted(set(parts)):
        idx = np.flatnonzero(parts == part)[: args.per_part]
        arr = read_split(args.data, args.split, dtype=np.float64, indices=idx)
        stim = stored_stimulus(arr)  # every stored protocol, not only the first pulse
        t0 = time.process_time()
        ref = simulate(model, stim, t_eval=t, t_end=float(t[-1]), method=ReferenceSolver(args.reference),
                       rtol=args.ref_tol, atol=args.ref_tol * floor)
        cpu = time.process_time() - t0
        ok = ref.status == 0
        err = range_error(arr["states"][ok], ref.states[ok], floor)  # (b, S)
        e = float(err.max()) if err.size else float("nan")
        worst_all = max(worst_all, e)
        s = names[int(np.unravel_index(np.argmax(err), err.shape)[1])] if err.size else "-"
        ref_ok = ref.states[ok]
        scale = np.maximum(ref_ok.max(axis=-1) - ref_ok.min(axis=-1), floor[None, :])
        half_ulp = 0.5 * np.spacing(np.abs(ref_ok).max(axis=-1).astype(np.float32)).astype(np.float64)
        storage = float((half_ulp / scale).max()) if err.size else float("nan")
        print(f"  {part:10s} n={idx.size} (ref failed {int((~ok).sum())}): max error / range {e:.2e} "
              f"(worst state {s}; float32 storage floor {storage:.1e}); reference "
              f"{cpu / max(idx.size, 1):.1f} s CPU per sample", flush=True)
    print(f"largest error / range over all parts: {worst_all:.2e} (bound 1e-3)")


if __name__ == "__main__":
    main()
