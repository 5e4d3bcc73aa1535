"""Training steps per second on a CPU: one process, torch DDP over 2 ranks, and the old pool.

For each preset model (``fhn-quick`` and the study's constrained ``fhn-constrained-cpu``) one
epoch-like pass over random data of the curriculum's coarse grid (630 points) and of the full
grid (1260 points), batch 16, in one run:

* one process with 1 and with 2 torch threads (``train.workers = 1``);
* ``DDP 2 ranks x 1 thread``: what ``train.workers = 2`` runs now (``ionfno.training.steps.
  DataParallel``, gloo; this process is rank 0, the other rank is spawned);
* ``old pool 2 x 1 thread``: the home-made shared-memory pool ``train.workers = 2`` ran before
  (``benchmarks/_old_pool.py``, a copy of the deleted ``training/parallel.py``).

Variants alternate in rounds (the first round warms up); reported are medians of the wall time
per step, steps per second and the speed-up against one process with one thread (> 1: faster).
Run it on an otherwise idle machine (``uptime``); the numbers mean nothing while other jobs run.

    OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_parallel.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

VARIANTS = ("1 process, 1 thread", "1 process, 2 threads", "old pool 2 x 1 thread", "DDP 2 ranks x 1 thread")


def _cases(args):
    """(preset, n_points, config, x, y) in the order both ranks go through them."""
    import torch

    from ionfno.training import apply_overrides, load_preset

    for preset in args.presets:
        cfg = apply_overrides(load_preset(preset), ["threads=1", "batch_size=16", "workers=1"])
        for n_points in args.n_points:
            torch.manual_seed(0)
            yield (
                preset,
                n_points,
                cfg,
                torch.randn(args.samples, 2, n_points),
                torch.randn(args.samples, 2, n_points),
            )


def _ddp_pass(step, x, y, opt, gen):
    from ionfno.training.losses import get_loss

    step.train_epoch(x, y, optimizer=opt, loss_fn=get_loss("l2"), batch_size=16, generator=gen)


def _ddp_side(device, args, rank0_times=None):
    """Both ranks: the DDP passes of every case and round, in the same order (rank 1 waits in the
    collectives while rank 0 times the other variants in between)."""
    import torch

    from ionfno.training import build_model
    from ionfno.training.steps import DataParallel

    torch.set_num_threads(1)
    for preset, n_points, cfg, x, y in _cases(args):
        torch.manual_seed(0)
        step = DataParallel(build_model(cfg, 2, 2), device)
        opt = torch.optim.AdamW(step.model.parameters(), lr=1e-5)
        gen = torch.Generator().manual_seed(0)
        for r in range(args.rounds + 1):
            if rank0_times is not None:
                rank0_times(preset, n_points, cfg, x, y, r)
                torch.set_num_threads(1)
            t0 = time.perf_counter()
            _ddp_pass(step, x, y, opt, gen)
            if rank0_times is not None and r:
                rank0_times.record(preset, n_points, "DDP 2 ranks x 1 thread", time.perf_counter() - t0)


def _rank1(device, args):
    _ddp_side(device, args)


class _Rank0:
    """Times the non-DDP variants of a round and collects every time per step."""

    def __init__(self, args):
        self.args, self.times, self._setup = args, {}, None
        self.steps = -(-args.samples // 16)

    def record(self, preset, n_points, name, seconds):
        self.times.setdefault((preset, n_points), {v: [] for v in VARIANTS})[name].append(
            seconds / self.steps
        )

    def __call__(self, preset, n_points, cfg, x, y, r):
        import torch
        from _old_pool import DataParallelPool

        from ionfno.training import build_model
        from ionfno.training.losses import get_loss
        from ionfno.training.steps import train_one_epoch

        if self._setup is None or self._setup[0] != (preset, n_points):
            if self._setup is not None:
                self._setup[3].close()
            torch.manual_seed(0)
            model = build_model(cfg, 2, 2)
            opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
            pool = DataParallelPool(2, 1, cfg, 2, 2, model, {"b_x": x, "b_y": y})
            self._setup = ((preset, n_points), model, opt, pool)
        _, model, opt, pool = self._setup
        gen = torch.Generator().manual_seed(0)
        loss = get_loss("l2")
        cpu = torch.device("cpu")
        for name in VARIANTS[:3]:
            torch.set_num_threads(2 if "2 threads" in name else 1)
            t0 = time.perf_counter()
            if name.startswith("old pool"):
                pool.train_one_epoch("b", x, y, optimizer=opt, loss_fn=loss, batch_size=16, generator=gen)
            else:
                train_one_epoch(
                    model, x, y, optimizer=opt, loss_fn=loss, batch_size=16, generator=gen, device=cpu
                )
            if r:  # the first round warms up
                self.record(preset, n_points, name, time.perf_counter() - t0)

    def close(self):
        if self._setup is not None:
            self._setup[3].close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["fhn-quick", "fhn-constrained-cpu"])
    parser.add_argument("--n-points", type=int, nargs="+", default=[630, 1260])
    parser.add_argument("--samples", type=int, default=320, help="samples per pass (steps = samples / 16)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import torch

    from ionfno.training.distributed import LocalRanks

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"torch {torch.__version__}, {os.cpu_count()} cores, load {load:.2f} at start, batch 16, "
        f"{args.samples} samples per pass, {args.rounds} rounds"
    )
    rank0 = _Rank0(args)
    try:
        with LocalRanks(2, torch.device("cpu"), 1, _rank1, (args,)) as device:
            _ddp_side(device, args, rank0)
    finally:
        rank0.close()
    for (preset, n_points), times in rank0.times.items():
        base = statistics.median(times[VARIANTS[0]])
        print(f"\n{preset} model, {n_points} points:")
        for name, ts in times.items():
            med = statistics.median(ts)
            print(f"  {name:<24} {1e3 * med:7.1f} ms/step  {1 / med:6.1f} steps/s  speed-up {base / med:.2f}")
    if hasattr(os, "getloadavg"):
        print(f"\nload {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
