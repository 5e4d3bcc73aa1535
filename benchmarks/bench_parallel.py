"""Training-step time on a CPU: one process (1 or 2 threads) against data-parallel workers.

For each preset model (``fhn-quick`` and the study's constrained ``fhn-constrained-cpu``) one
epoch-like pass over random data of the curriculum's coarse grid (630 points) and of the full
grid (1260 points), batch 16: ``train_one_epoch`` in one process with 1 and with 2 torch
threads, and ``DataParallelPool`` with 2 workers x 1 thread (``train.workers=2``). Variants
alternate in rounds inside one run; reported are medians of the wall time per step and the
speed-up against one process with one thread (> 1: faster).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_parallel.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["fhn-quick-curriculum", "fhn-constrained-cpu"])
    parser.add_argument("--n-points", type=int, nargs="+", default=[630, 1260])
    parser.add_argument("--samples", type=int, default=320, help="samples per pass (steps = samples / 16)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import torch

    from ionfno.training import apply_overrides, load_preset
    from ionfno.training.loop import _loss_fn, build_model, train_one_epoch
    from ionfno.training.parallel import DataParallelPool

    cpu = torch.device("cpu")
    print(f"torch {torch.__version__}, {os.cpu_count()} cores, batch 16, {args.samples} samples per pass")
    for preset in args.presets:
        cfg = apply_overrides(load_preset(preset), ["threads=1", "batch_size=16"])
        for n_points in args.n_points:
            torch.manual_seed(0)
            x = torch.randn(args.samples, 2, n_points)
            y = torch.randn(args.samples, 2, n_points)
            model = build_model(cfg, 2, 2)
            opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
            loss_fn = _loss_fn("l2")
            gen = torch.Generator().manual_seed(0)
            steps = -(-args.samples // 16)
            times: dict[str, list[float]] = {"1 process, 1 thread": [], "1 process, 2 threads": [], "2 workers x 1 thread": []}
            with DataParallelPool(2, 1, cfg, 2, 2, model, {"b_x": x, "b_y": y}) as pool:
                for r in range(args.rounds + 1):
                    for name in times:
                        t0 = time.perf_counter()
                        if name.startswith("2 workers"):
                            torch.set_num_threads(1)
                            pool.train_one_epoch("b", x, y, optimizer=opt, loss_fn=loss_fn, batch_size=16, generator=gen)
                        else:
                            torch.set_num_threads(2 if "2 threads" in name else 1)
                            train_one_epoch(model, x, y, optimizer=opt, loss_fn=loss_fn, batch_size=16,
                                            generator=gen, device=cpu)
                        if r:  # the first round warms up
                            times[name].append((time.perf_counter() - t0) / steps)
            base = statistics.median(times["1 process, 1 thread"])
            print(f"\n{preset} model, {n_points} points:")
            for name, ts in times.items():
                med = statistics.median(ts)
                print(f"  {name:<22} {1e3 * med:7.1f} ms/step  speed-up {base / med:.2f}")


if __name__ == "__main__":
    main()
