"""Training-step time of ionfno's FNO1d against neuraloperator's FNO of the same architecture.

One step = zero_grad + forward + relative L2 loss + backward + AdamW step, batch 32, 1260 time
points, the reference study's default architecture (width 64, 4 Fourier layers, 16 modes,
lifting/projection 128, Classic block, GELU), with 2 (FHN) and 41 (ORd) output variables.
The models are timed in interleaved rounds inside one process, so background load hits all of
them alike; reported are the medians over rounds of the wall time and of the process CPU time
per step, and the ratios neuraloperator / ours (> 1: ours is faster).

neuraloperator is not a dependency of ionfno. Install it outside the project's environment,
for example::

    pip install --no-deps --target /tmp/nop_site neuraloperator==2.0.0 tensorly tensorly-torch \\
        opt-einsum requests urllib3 idna certifi
    PYTHONPATH=/tmp/nop_site python benchmarks/bench_fno_step.py

Without it the script times ionfno's variants only.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
import warnings


def train_step(model, x, y, opt) -> None:
    """One optimisation step: forward, relative L2 loss, backward, AdamW update."""
    from ionfno.training.losses import relative_lp

    opt.zero_grad(set_to_none=True)
    loss = relative_lp(model(x), y)
    loss.backward()
    opt.step()


def spectral_sweep(n_times=(256, 1260, 5040), modes=(4, 8, 16, 32, 64, 128), channels=64, batch=32) -> None:
    """Spectral layer alone: rfft/irfft vs truncated DFT, forward + backward, best of 6 (CPU time)."""
    import torch

    from ionfno.fno import SpectralConv1d

    print(f"spectral layer, {channels} channels, batch {batch}: ratio fft / dft CPU time (> 1: dft faster)")
    for n_time in n_times:
        for k in modes:
            if k > n_time // 2 + 1:
                continue
            conv = SpectralConv1d(channels, channels, k)
            x = torch.randn(batch, channels, n_time, requires_grad=True)
            best = {}
            for impl in ("fft", "dft"):
                conv.implementation = impl
                ts = []
                for _ in range(7):
                    t0 = time.process_time()
                    y = conv(x)
                    y.backward(torch.ones_like(y))
                    ts.append(time.process_time() - t0)
                best[impl] = min(ts[1:])
            print(
                f"  N {n_time:5d} K {k:4d}: fft {1e3 * best['fft']:7.1f} ms, "
                f"dft {1e3 * best['dft']:7.1f} ms, "
                f"ratio {best['fft'] / best['dft']:.2f}"
            )


def model_sweep(
    n_times=(256, 630, 1260), modes=(8, 12, 16, 24, 32, 48), widths=(32, 64), batch=16, rounds=5, steps=3,
    block="classic",
) -> None:
    """Whole training step of FNO1d (4 layers), rfft/irfft vs truncated DFT (CPU time).

    The spectral layer alone (``spectral_sweep``) misses the cost the FFT path adds around it
    (complex buffers, zero-filled spectra), so ``spectral="auto"`` is set from this sweep.
    Interleaved rounds of ``steps`` steps each; medians of the per-step process CPU time.
    """
    import torch

    from ionfno.fno import FNO1d

    print(f"training step, {block}, 4 layers, lifting/projection 2x width, batch {batch}: "
          "ratio fft / dft (> 1: dft faster)")
    for width in widths:
        for n_time in n_times:
            for k in modes:
                if k > n_time // 2 + 1:
                    continue
                runs = {}
                for impl in ("fft", "dft"):
                    torch.manual_seed(0)
                    model = FNO1d(
                        n_modes=k, in_channels=2, out_channels=2, hidden_channels=width, n_layers=4,
                        block=block, lifting_channels=2 * width, projection_channels=2 * width,
                        spectral=impl,
                    )
                    runs[impl] = functools.partial(
                        train_step, model, torch.randn(batch, 2, n_time), torch.randn(batch, 2, n_time),
                        torch.optim.AdamW(model.parameters(), lr=1e-3),
                    )
                cpu: dict[str, list[float]] = {impl: [] for impl in runs}
                for r in range(rounds + 1):
                    for impl, step in runs.items():
                        c0 = time.process_time()
                        for _ in range(steps):
                            step()
                        if r:
                            cpu[impl].append((time.process_time() - c0) / steps)
                fft, dft = statistics.median(cpu["fft"]), statistics.median(cpu["dft"])
                print(
                    f"  width {width:3d} N {n_time:5d} K {k:3d} (N/K {n_time / k:5.1f}): "
                    f"fft {1e3 * fft:7.1f} ms, dft {1e3 * dft:7.1f} ms, ratio {fft / dft:.2f}",
                    flush=True,
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--n-time", type=int, default=1260)
    parser.add_argument("--out-channels", type=int, nargs="+", default=[2, 41])
    parser.add_argument("--rounds", type=int, default=10, help="timed rounds (after 2 warm-up rounds)")
    parser.add_argument("--hidden-channels", type=int, default=64)
    parser.add_argument("--n-modes", type=int, default=16)
    parser.add_argument("--n-layers", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--spectral-sweep", action="store_true", help="also time the spectral layer alone")
    parser.add_argument(
        "--model-sweep", action="store_true",
        help="only time whole training steps, fft vs dft, over grids and modes (sets spectral='auto')",
    )
    parser.add_argument("--sweep-n-times", type=int, nargs="+", default=[256, 630, 1260],
                        help="--model-sweep grids (e.g. 127 128: a rollout's chunk of 126 or 127 intervals)")
    parser.add_argument("--sweep-modes", type=int, nargs="+", default=[8, 12, 16, 24, 32, 48])
    parser.add_argument("--sweep-widths", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--sweep-block", default="classic", choices=["classic", "zongyi", "residual"])
    parser.add_argument("--sweep-batch", type=int, default=16)
    args = parser.parse_args()

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch
    import torch.nn.functional as F

    from ionfno.fno import FNO1d

    torch.set_num_threads(args.threads)
    if args.model_sweep:
        model_sweep(tuple(args.sweep_n_times), tuple(args.sweep_modes), tuple(args.sweep_widths),
                    batch=args.sweep_batch, block=args.sweep_block)
        return
    if args.spectral_sweep:
        spectral_sweep()
    device = torch.device(args.device)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from neuralop.models import FNO as NeuralopFNO
    except ImportError:
        NeuralopFNO = None
        print("neuraloperator not importable: timing ionfno only (see the module docstring)")

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    print(
        f"torch {torch.__version__}, {args.threads} threads, device {device}, batch {args.batch}, "
        f"n_time {args.n_time}, width {args.hidden_channels}, {args.n_layers} layers, {args.n_modes} modes"
    )
    for out_channels in args.out_channels:
        torch.manual_seed(0)
        arch = dict(
            in_channels=2,
            out_channels=out_channels,
            hidden_channels=args.hidden_channels,
            n_layers=args.n_layers,
        )
        models = {
            f"ionfno[{spec}]": FNO1d(
                n_modes=args.n_modes, lifting_channels=128, projection_channels=128, spectral=spec, **arch
            )
            for spec in ("auto", "dft", "fft")
        }
        if NeuralopFNO is not None:
            # neuraloperator keeps n // 2 + 1 modes of the last (real-FFT) dimension.
            models["neuraloperator"] = NeuralopFNO(
                n_modes=(2 * (args.n_modes - 1),),
                lifting_channel_ratio=128 / args.hidden_channels,
                projection_channel_ratio=128 / args.hidden_channels,
                positional_embedding=None,
                use_channel_mlp=False,
                fno_skip="linear",
                non_linearity=F.gelu,
                **arch,
            )
        x = torch.randn(args.batch, 2, args.n_time, device=device)
        y = torch.randn(args.batch, out_channels, args.n_time, device=device)

        steps = {}
        for name, model in models.items():
            model.to(device)
            steps[name] = functools.partial(
                train_step, model, x, y, torch.optim.AdamW(model.parameters(), lr=1e-3)
            )
        n_params = {
            name: sum(p.numel() * (2 if p.is_complex() else 1) for p in m.parameters())
            for name, m in models.items()
        }
        # Wall time per step, and CPU time of this process per step: under background load the
        # wall time also counts the time this process waited for a core, the CPU time does not.
        wall: dict[str, list[float]] = {name: [] for name in models}
        cpu: dict[str, list[float]] = {name: [] for name in models}
        for r in range(args.rounds + 2):
            for name, step in steps.items():
                sync()
                w0, c0 = time.perf_counter(), time.process_time()
                step()
                sync()
                if r >= 2:
                    wall[name].append(time.perf_counter() - w0)
                    cpu[name].append(time.process_time() - c0)
        print(f"\nout_channels = {out_channels}")
        med_wall = {name: statistics.median(ts) for name, ts in wall.items()}
        med_cpu = {name: statistics.median(ts) for name, ts in cpu.items()}
        for name in models:
            print(
                f"  {name:<16} wall {1e3 * med_wall[name]:8.1f} ms/step (min {1e3 * min(wall[name]):7.1f}), "
                f"cpu {1e3 * med_cpu[name]:8.1f} ms/step  {n_params[name]:>9,d} params"
            )
        if "neuraloperator" in models:
            for name in models:
                if name.startswith("ionfno"):
                    print(
                        f"  ratio neuraloperator / {name}: "
                        f"wall {med_wall['neuraloperator'] / med_wall[name]:.2f} "
                        f"(min {min(wall['neuraloperator']) / min(wall[name]):.2f}), "
                        f"cpu {med_cpu['neuraloperator'] / med_cpu[name]:.2f}"
                    )


if __name__ == "__main__":
    main()
