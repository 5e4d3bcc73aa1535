"""Peak memory and step time of training with the split in memory against streamed from the file.

Runs ``ionfno train DATA --preset PRESET`` twice in fresh processes, ``data.loading=memory``
and ``data.loading=stream``, each for ``--epochs`` epochs on the first ``--n-train`` samples,
and reports the peak resident memory of the whole command (``/usr/bin/time``'s maximum RSS,
which includes reading and encoding the splits) and the mean epoch time from the run's
metrics.csv. The interesting case is a file at the study's resolution, e.g. ORd on 10080 points:

    ionfno generate ord --n-points 10080 --out data/ord-10080.h5 --workers 2
    OMP_NUM_THREADS=1 python benchmarks/bench_streaming.py data/ord-10080.h5 --preset ord-constrained-2h \\
        --subsample 1 --n-train 3000 --epochs 1

Run it on an otherwise idle machine; both variants run one after the other in the same call.
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def _run(args: argparse.Namespace, loading: str, out: Path) -> dict[str, float]:
    ionfno = shutil.which("ionfno") or str(Path(sys.executable).with_name("ionfno"))
    cmd = [
        "/usr/bin/time", "-v", ionfno, "train", str(args.data), "--preset", args.preset, "--device", "cpu",
        "--no-progress", "--out", str(out),
        "--set", f"data.loading={loading}", "--set", f"data.subsample={args.subsample}",
        "--set", f"data.n_train={args.n_train}", "--set", f"train.epochs={args.epochs}",
        "--set", "train.time_limit_s=None", "--set", "train.coarse_epochs=0",
        "--set", f"train.workers={args.workers}", "--set", "train.val_every=1000",
    ]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{loading}: ionfno train failed:\n{p.stderr[-3000:]}")
    rss_kb = float(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time.*: (.*)", p.stderr).group(1)
    rows = list(csv.DictReader(open(out / "metrics.csv", newline="")))
    epoch_s = sum(float(r["epoch_time_s"]) for r in rows) / len(rows)
    loss = float(rows[-1]["train_loss"])
    return {"rss_gib": rss_kb / 2**20, "epoch_s": epoch_s, "wall": wall, "train_loss": loss}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="dataset file (.h5)")
    ap.add_argument("--preset", default="ord-constrained-2h")
    ap.add_argument("--subsample", type=int, default=1, help="data.subsample (1: the stored grid)")
    ap.add_argument("--n-train", type=int, default=3000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        res = {m: _run(args, m, Path(tmp) / m) for m in ("memory", "stream")}
    print(f"{args.data}, preset {args.preset}, subsample {args.subsample}, {args.n_train} training "
          f"samples, {args.epochs} epoch(s), {args.workers} worker(s)")
    print("| loading | peak RSS | epoch | wall (whole command) | last train loss |")
    print("|---|---|---|---|---|")
    for m, r in res.items():
        print(f"| {m} | {r['rss_gib']:.2f} GiB | {r['epoch_s']:.1f} s | {r['wall']} | "
              f"{r['train_loss']:.4f} |")
    m, s = res["memory"], res["stream"]
    print(f"stream / memory: peak RSS {s['rss_gib'] / m['rss_gib']:.2f}x, "
          f"epoch time {s['epoch_s'] / m['epoch_s']:.2f}x")


if __name__ == "__main__":
    main()
