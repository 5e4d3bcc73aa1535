"""Ground-truth accuracy of ``fast`` on every part of a dataset mixture, per tolerance.

For the first ``--per-part`` samples of each part of a mixture preset (the ``train`` split of
seed ``--seed``, drawn as ``ionfno generate`` draws them), integrates the tight SciPy
reference (Radau by default, rtol = ``--ref-tol``, atol = ref-tol x each unit's floor) and
each of ``--methods`` (default ``fast``) at each ``--rtols``, on the preset's grid, and prints
per part and tolerance the largest error relative to each state's range (floors as in
``ionfno.solvers.state_floor``), the worst state, the steps per sample, the CPU time per
sample and any failures. This is the
measurement behind each mixture's ``solver.rtol`` (its ``notes.solver``), with a 1e-3 bound.

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/bench_accuracy.py --model hh \\
        --per-part 3 --rtols 1e-5 1e-6 4e-7 2e-7 1e-7 --cache /tmp/ref_cache

References are cached as .npz files under ``--cache`` (keyed by model, seed, sample index,
method and tolerance), so later runs with other tolerances reuse them.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from ionfno.data.mixtures import load_mixture, sample_parameters, sample_stimuli  # noqa: E402
from ionfno.ionic import get_model  # noqa: E402
from ionfno.solvers import ReferenceSolver, simulate, state_floor  # noqa: E402
from ionfno.stimulus import pulse  # noqa: E402


def range_error(a: np.ndarray, ref: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """Max over time of |a - ref| / max(range(ref), floor), shape (B, n_states)."""
    scale = np.maximum(ref.max(axis=-1) - ref.min(axis=-1), floor[None, :])
    return np.max(np.abs(a - ref), axis=-1) / scale


def pick(mixture, seed: int, split: str, t_end: float, per_part: int) -> dict[str, dict[str, np.ndarray]]:
    """The first ``per_part`` samples of each part: {part: {amplitude, duration, onset, index}}."""
    p = sample_parameters(mixture, seed=seed, split=split, t_end=t_end)
    out = {}
    for part in mixture.part_names:
        rows = np.flatnonzero(p["part"] == part)[:per_part]
        out[str(part)] = {k: p[k][rows] for k in ("amplitude", "duration", "onset", "index")}
    return out


def reference(model, stim, grid, t_end, method, tol, cache: Path | None, key: str) -> np.ndarray:
    path = None if cache is None else cache / f"{key}.npz"
    if path is not None and path.exists():
        with np.load(path) as f:
            return f["states"]
    traj = simulate(model, stim, t_end=t_end, t_eval=grid, method=ReferenceSolver(method, tol=tol))
    if not np.all(traj.status == 0):
        raise RuntimeError(f"reference failed ({key}): status {traj.status}")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, states=traj.states[0])
    return traj.states[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True,
                    help="a mixture preset: fhn, hh, ord or their -general variants (the model is its model)")
    ap.add_argument("--per-part", type=int, default=3)
    ap.add_argument("--rtols", type=float, nargs="+", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", default="train")
    ap.add_argument("--reference", default="Radau", choices=["Radau", "BDF"])
    ap.add_argument("--ref-tol", type=float, default=1e-10)
    ap.add_argument("--cache", type=Path, default=None, help="folder for cached reference trajectories")
    ap.add_argument("--parts", nargs="*", default=None, help="only these parts")
    ap.add_argument("--sweep", nargs=4, type=float, default=None, metavar=("A0", "A1", "COUNT", "T"),
                    help="also COUNT pulses of duration T at amplitudes linspace(A0, A1) (e.g. HH's "
                         "near-threshold repetitive firing: 6.0 6.6 13 100)")
    ap.add_argument("--methods", nargs="+", default=["fast"],
                    help="solvers measured at each tolerance (e.g. fast fast_exact: ORd with and "
                         "without its voltage lookup tables)")
    args = ap.parse_args()

    mixture = load_mixture(args.model)
    model = get_model(mixture.model)
    t_end = float(mixture.t_end or model.t_end_default)
    n_points = int(mixture.n_points or model.n_points_default)
    grid = np.linspace(0.0, t_end, n_points)
    floor = state_floor(model)
    print(f"{model.name}: mixture {mixture.name}, {n_points} points over {t_end:g} ms; reference "
          f"{args.reference} tol {args.ref_tol:g}; load average {os.getloadavg()[0]:.1f} at start")
    print(f"{'part':<10} {'rtol':>8} {'max err':>9} {'worst state':<14} {'steps':>9} {'ms/sample':>10} fail")
    worst_overall = {}
    parts = pick(mixture, args.seed, args.split, t_end, args.per_part)
    if args.sweep:
        a0, a1, count, dur = args.sweep
        amps = np.linspace(a0, a1, int(count))
        parts["sweep"] = {"amplitude": amps, "duration": np.full(amps.shape, dur),
                          "onset": np.zeros(amps.shape), "index": np.arange(amps.size)}
    for part, s in parts.items():
        if (args.parts and part not in args.parts) or len(s["amplitude"]) == 0:
            continue
        if part == "sweep" or mixture.kinds == ["pulse"]:
            stim = pulse(s["amplitude"], s["duration"], s["onset"])
        else:  # trains, S1-S2 pairs and random currents as `ionfno generate` builds them
            stim = sample_stimuli(mixture, seed=args.seed, split=args.split, t=grid, t_end=t_end,
                                  indices=s["index"])[1]
        t0 = time.process_time()
        if part == "sweep":
            pairs = zip(s["amplitude"], s["duration"], strict=True)
            keys = [f"{model.name}_pulse_{a!r}_{d!r}" for a, d in pairs]
        else:
            prefix = model.name if mixture.kinds == ["pulse"] else mixture.name
            keys = [f"{prefix}_s{args.seed}_{args.split}_{int(i)}" for i in s["index"]]
        refs = np.stack([
            reference(model, stim.select(np.array([i])), grid, t_end, args.reference, args.ref_tol,
                      args.cache, f"{key}_{n_points}_{args.reference}_{args.ref_tol:g}")
            for i, key in enumerate(keys)
        ])
        ref_cpu = time.process_time() - t0
        for rtol, method in ((r, m) for r in args.rtols for m in args.methods):
            t0 = time.process_time()
            traj = simulate(model, stim, t_end=t_end, t_eval=grid, method=method, rtol=rtol,
                            atol=rtol * floor)
            cpu = time.process_time() - t0
            ok = traj.status == 0
            err = (range_error(traj.states[ok], refs[ok], floor) if ok.any()
                   else np.full((1, model.n_states), np.nan))
            j = np.unravel_index(np.nanargmax(err), err.shape)
            worst_overall[rtol, method] = max(worst_overall.get((rtol, method), 0.0), float(np.nanmax(err)))
            desc = ", ".join(f"A={a:.3g} T={d:.3g}"
                             for a, d in zip(s["amplitude"], s["duration"], strict=True))
            print(f"{part:<10} {rtol:>8.1e} {np.nanmax(err):>9.2e} {model.state_names[j[1]]:<14} "
                  f"{traj.stats['steps'].mean():>9.0f} {1e3 * cpu / len(ok):>10.1f} {int((~ok).sum())}"
                  + (f"  {method}" if len(args.methods) > 1 else "")
                  + (f"   [{desc}; reference {ref_cpu:.0f} s CPU]"
                     if rtol == args.rtols[0] and method == args.methods[0] else ""))
    print("worst over all parts: "
          + ", ".join(f"rtol {r:.1e} {m}: {e:.2e}" for (r, m), e in worst_overall.items()))


if __name__ == "__main__":
    main()
