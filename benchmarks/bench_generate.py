"""Dataset generation wall time (FHN, HH, ORd full datasets) and SciPy BDF per-sample time.

For each model, generate the full preset dataset (3000/375/375 samples) with the preset's
solver (compiled ``fast`` at the preset tolerance) and ``--workers W`` (default 2), as
``ionfno generate MODEL --out X.h5 --workers W`` does, then report wall time, CPU time (this
process and its workers: the figure least disturbed by other load), samples/s, file size,
failed samples and the fraction that fires. In the same run, time SciPy's BDF at the study's
settings (``solve_ivp(method="BDF", rtol=1e-6, atol=1e-6, max_step=1 ms)``, one sample at a
time over the same window, Jacobian by finite differences as SciPy does by default) on a few
samples of the same mixture and extrapolate to the whole dataset on the same cores.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_generate.py                     # fhn, hh, ord; 2 workers
    OMP_NUM_THREADS=1 python benchmarks/bench_generate.py --models ord --bdf-samples 3 --json out.json

Targets (issue 16): ORd <= 60 s with 2 workers; FHN and HH in seconds (floor 60 s).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

FLOORS_S = {"fhn": 60.0, "hh": 60.0, "ord": 60.0}


def bdf_seconds_per_sample(model_name: str, config, n: int) -> dict:
    """Time SciPy BDF (rtol = atol = 1e-6, max_step = 1 ms) on the first ``n`` train samples."""
    from scipy.integrate import solve_ivp

    from ionfno.data.mixtures import sample_parameters
    from ionfno.ionic import get_model
    from ionfno.stimulus import pulse

    model = get_model(model_name)
    params = model.default_params()
    y0 = model.default_state()
    p = sample_parameters(
        config.mixture,
        seed=config.seed,
        split="train",
        n=config.counts["train"],
        t_end=config.t_end,
        indices=np.arange(n),
    )
    times, statuses = [], []
    for k in range(n):
        stim = pulse(p["amplitude"][k], p["duration"][k], p["onset"][k])

        def f(t, y, stim=stim):
            return model.rhs(t, y[None, :], params, stim.current(np.array([t])))[0]

        t0 = time.perf_counter()
        sol = solve_ivp(
            f, (0.0, config.t_end), y0, method="BDF", rtol=1e-6, atol=1e-6, max_step=1.0, t_eval=config.grid
        )
        times.append(time.perf_counter() - t0)
        statuses.append(int(sol.status))
    return {
        "n": n,
        "seconds": times,
        "mean_s": float(np.mean(times)),
        "statuses": statuses,
        "parts": p["part"].tolist(),
    }


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the generation workers)."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run(models, workers: int, bdf_samples: int, out_dir: Path, keep: bool) -> list[dict]:
    import h5py

    from ionfno.data.generate import generate_dataset, make_config

    rows = []
    for m in models:
        cfg = make_config(m)
        path = out_dir / f"{m}.h5"
        n = sum(cfg.counts.values())
        t0, c0 = time.perf_counter(), _cpu_seconds()
        res = generate_dataset(cfg, path, workers=workers, overwrite=True, restart=True, progress=True)
        wall, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
        with h5py.File(path, "r") as f:
            status = np.concatenate([f[s]["status"][()] for s in ("train", "val", "test")])
            fires = np.concatenate([f[s]["fires"][()] for s in ("train", "val", "test")])
            part = np.concatenate([f[s]["part"].asstr()[()] for s in ("train", "val", "test")])
        ok = status == 0
        row = {
            "model": m,
            "samples": n,
            "workers": workers,
            "wall_s": wall,
            "cpu_s": cpu,
            "samples_per_s": n / wall,
            "floor_s": FLOORS_S.get(m),
            "floor_met": wall < FLOORS_S.get(m, np.inf),
            "file_MB": path.stat().st_size / 1e6,
            "n_points": cfg.n_points,
            "t_end": cfg.t_end,
            "rtol": cfg.solver.rtol,
            "failed": int((~ok).sum()),
            "fraction_firing": float(fires[ok].mean()),
            "fraction_firing_per_part": {
                p: float(fires[ok & (part == p)].mean())
                for p in cfg.mixture.part_names
                if np.any(ok & (part == p))
            },
        }
        with h5py.File(path, "r") as f:
            row["raw_float32_MB"] = n * f["train"]["states"].shape[1] * cfg.n_points * 4 / 1e6
        row["compression_ratio"] = row["raw_float32_MB"] / row["file_MB"]
        if bdf_samples > 0:
            b = bdf_seconds_per_sample(m, cfg, bdf_samples)
            row["bdf"] = b
            row["bdf_extrapolated_s"] = b["mean_s"] * n / workers
            row["speedup_vs_bdf"] = row["bdf_extrapolated_s"] / wall
        rows.append(row)
        print(json.dumps(row, indent=1), flush=True)
        if not keep:
            path.unlink()
        del res
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["fhn", "hh", "ord"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--bdf-samples", type=int, default=3, help="SciPy BDF samples per model (0: skip)")
    ap.add_argument("--out-dir", type=Path, default=None, help="where the datasets go (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = args.out_dir or Path(tmp)
        t0 = time.time()
        rows = run(args.models, args.workers, args.bdf_samples, out_dir, args.keep)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "load_avg_at_end": os.getloadavg(),
        "total_s": time.time() - t0,
    }
    print(
        "\n| model | samples | workers | wall | CPU | floor | samples/s | file | firing | failed "
        "| BDF s/sample | BDF extrapolated | speed-up |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        b = r.get("bdf")
        print(
            f"| {r['model']} | {r['samples']} | {r['workers']} | {r['wall_s']:.1f} s | {r['cpu_s']:.1f} s "
            f"| {r['floor_s']:.0f} s "
            f"{'met' if r['floor_met'] else 'MISSED'} | {r['samples_per_s']:.1f} | {r['file_MB']:.0f} MB "
            f"(x{r['compression_ratio']:.2f}) | {r['fraction_firing']:.3f} | {r['failed']} | "
            + (
                f"{b['mean_s']:.2f} (n={b['n']}) | {r['bdf_extrapolated_s'] / 60:.1f} min "
                f"| {r['speedup_vs_bdf']:.0f}x |"
                if b
                else "- | - | - |"
            )
        )
    print(json.dumps(meta))
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
