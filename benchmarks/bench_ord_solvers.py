"""ORd, one 1000 ms beat: ``fast`` vs SciPy BDF at the reference study's settings.

Prints, in one run: fast's samples/s on a batch of random pulses around the excitation
threshold (A ~ U(30, 100) µA/µF, T_stim ~ U(0.3, 1.5) ms; 80 for 1 ms fires, 40 for 0.5 ms
does not), SciPy BDF's samples/s at atol = rtol = 1e-6, max_step = 1 ms on a few of them,
their ratio, and the max error (relative to each variable's range over the run, floors as in
``ionfno.solvers.state_floor``) of both against a tight reference (BDF, tol 1e-8), plus
Myokit (CVODES) if it is importable.

Two BDF columns: "plain" is ``solve_ivp(method="BDF")`` as the study used it (one sample per
call, dense finite-difference Jacobian column by column); "ionfno" is our reference wrapper
(vectorised rhs, sparse finite-difference Jacobian), about twice as fast, so its ratio is the
stricter one. Both restart at the stimulus edges. Run with one thread:

    OMP_NUM_THREADS=1 python benchmarks/bench_ord_solvers.py --batch 512 --n-bdf 3
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from ionfno.ionic import get_model  # noqa: E402
from ionfno.solvers import ReferenceSolver, simulate, state_floor  # noqa: E402
from ionfno.stimulus import pulse  # noqa: E402


def range_error(a: np.ndarray, ref: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """Max over time of |a - ref| / max(range(ref), floor), shape (B, n_states)."""
    scale = np.maximum(ref.max(axis=-1) - ref.min(axis=-1), floor[None, :])
    return np.max(np.abs(a - ref), axis=-1) / scale


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=512, help="ORd samples for fast")
    ap.add_argument("--chunk", type=int, default=None, help="fast's chunk size (default: solver's)")
    ap.add_argument("--n-bdf", type=int, default=3, help="samples for SciPy BDF (timed, then extrapolated)")
    ap.add_argument("--n-err", type=int, default=3, help="samples checked against the tight reference")
    ap.add_argument("--t-end", type=float, default=1000.0)
    ap.add_argument("--n-points", type=int, default=10080)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    model = get_model("ord")
    rng = np.random.default_rng(args.seed)
    A = rng.uniform(30.0, 100.0, args.batch)
    T = rng.uniform(0.3, 1.5, args.batch)
    stim = pulse(A, T)
    kw = dict(t_end=args.t_end, n_points=args.n_points)
    floor = state_floor(model)
    print(f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, numpy {np.__version__}, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS')}; load average {os.getloadavg()[0]:.1f} at start")

    t0, c0 = time.perf_counter(), time.process_time()
    fast = simulate(model, stim, method="fast", chunk_size=args.chunk, **kw)
    w_fast, c_fast = time.perf_counter() - t0, time.process_time() - c0
    fired = np.mean(fast.states[:, 0].max(axis=1) > 0.0)
    print(f"fast   : {args.batch} samples in {w_fast:.1f} s -> {args.batch / w_fast:.1f} samples/s "
          f"({1e3 * w_fast / args.batch:.1f} ms/sample); steps/sample {fast.stats['steps'].mean():.0f} "
          f"(+{fast.stats['rejected'].mean():.0f} rejected), status ok {np.mean(fast.status == 0):.0%}, "
          f"fired {fired:.0%}; CPU time {1e3 * c_fast / args.batch:.1f} ms/sample")

    nb = min(args.n_bdf, args.batch)
    sub = stim.select(np.arange(nb))
    rate_fast, cpu_fast = args.batch / w_fast, args.batch / c_fast
    slow = None
    for label, bdf in [
        ("BDF plain ", ReferenceSolver("BDF", max_step=1.0, sparse_jacobian=False, vectorized=False)),
        ("BDF ionfno", ReferenceSolver("BDF", max_step=1.0)),
    ]:
        t0, c0 = time.perf_counter(), time.process_time()
        traj = simulate(model, sub, method=bdf, rtol=1e-6, atol=1e-6, **kw)
        w_bdf, c_bdf = time.perf_counter() - t0, time.process_time() - c0
        slow = traj if slow is None else slow
        print(f"{label}: {nb} samples in {w_bdf:.1f} s -> {nb / w_bdf:.3f} samples/s "
              f"({w_bdf / nb:.2f} s/sample, "
              f"CPU {c_bdf / nb:.2f} s/sample) [atol=rtol=1e-6, max_step=1 ms]")
        print(f"   ratio fast / {label.strip()}: {rate_fast / (nb / w_bdf):.0f}x samples/s (wall), "
              f"{cpu_fast / (nb / c_bdf):.0f}x (CPU time; less sensitive to other load)")

    ne = min(args.n_err, args.batch)
    t0 = time.perf_counter()
    ref = simulate(model, stim.select(np.arange(ne)), method="reference", **kw)
    w_ref = time.perf_counter() - t0
    e_fast = range_error(fast.states[:ne], ref.states, floor)
    worst = np.unravel_index(np.argmax(e_fast), e_fast.shape)
    print(f"error  : fast max range-relative error vs tight reference (BDF tol 1e-8, {ne} samples, "
          f"{w_ref:.0f} s): {e_fast.max():.2e} (worst {model.state_names[worst[1]]}); "
          f"V: {e_fast[:, 0].max():.2e}")
    nn = min(ne, nb)
    e_bdf = range_error(slow.states[:nn], ref.states[:nn], floor)
    print(f"         BDF(1e-6) on the same samples: {e_bdf.max():.2e} "
          f"(worst {model.state_names[np.unravel_index(np.argmax(e_bdf), e_bdf.shape)[1]]})")

    try:
        import myokit  # noqa: F401
    except ImportError:
        print("myokit : not installed (optional third column)")
    else:
        print("myokit : installed, but no ORd .mmt is bundled here; not timed")


if __name__ == "__main__":
    main()
