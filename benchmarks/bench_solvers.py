"""One ORd cell, paced cells and batches: the compiled ``fast`` solver against SciPy and Myokit.

Prints, in one run (all on one thread unless ``--threads``; CPU time is process time, the
figure least disturbed by other load on the machine):

1. **one beat**: one ORd endocardial cell, one 1000 ms beat (80 µA/µF for 0.5 ms) from the
   published state, default tolerance, output on the study's 10080-point grid: each of
   ``--methods`` (default ``fast``, with ORd's voltage lookup tables, and ``fast_exact``, every
   exponential evaluated; the median of ``--repeats`` runs after a warm-up, the methods
   alternated twice), SciPy BDF at the study's settings (rtol = atol = 1e-6, max_step = 1 ms;
   plain ``solve_ivp`` and ionfno's wrapper with a vectorised rhs and sparse Jacobian), the
   ratio to the first method, and each one's largest error relative to each state's range
   against SciPy Radau at tol 1e-10; Myokit (CVODES) when ``--myokit-mmt`` names an ORd .mmt
   file and myokit is installed;
2. **pacing**: ``--beats`` beats at 1 Hz of one cell with per-beat biomarkers
   (:func:`ionfno.pacing.pace`, as ``ionfno simulate --save-every-beat``);
3. **batch**: ``--batch`` cells with random pulses around the threshold in one call, each
   of ``--methods``, ms of CPU per beat per core (and of it system time), alternated twice;
   with ``--allocators`` also with plain ``np.empty`` as the output array (NumPy's huge-page
   advice) and with 4 KiB pages faulted in on first write, against the solver's pre-faulted
   array;
4. **tables**: ORd's vector field per evaluation, exact and with the 0.05 mV table (a compiled
   loop), then the table at 0.01, 0.02 and 0.05 mV (the default) against the exact vector
   field: the compiled integration's time alone and the change of the beat; and the 0.05 mV
   case onto 2 output points, so the cost of the 10080-point dense output is the difference;
5. **compile**: numba's compile time in a fresh process with an empty cache (``cold``) and
   again with the cache filled (``cached``), for importing the solver and one ORd beat;
6. **CLI**: wall time of ``ionfno simulate ord --amplitude 80 --duration 0.5`` in a new
   process with the cache warm.

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/bench_solvers.py \\
        --myokit-mmt /path/to/ohara-2011.mmt

Myokit's ORd (``ohara-2011.mmt`` of the myokit/models repository, not shipped here) is set to
the endocardial cell (``cell.mode = 0``), our start state (matched by name) and the same
pulse; CVODES at Myokit's default tolerances (rtol 1e-4, atol 1e-6). Its error is measured
against Myokit itself at tol 1e-10: the two transcriptions differ (printed apart).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from ionfno.ionic import get_model  # noqa: E402
from ionfno.pacing import pace  # noqa: E402
from ionfno.solvers import ReferenceSolver, simulate, state_floor  # noqa: E402
from ionfno.stimulus import pulse  # noqa: E402

T_END, N_POINTS = 1000.0, 10080
# Myokit's names of ORd's states (ohara-2011.mmt), in our state order (the MATLAB order)
MYOKIT_NAMES = (
    "membrane.V sodium.Na_i sodium.Na_ss potassium.K_i potassium.K_ss calcium.Ca_i calcium.Ca_ss "
    "calcium.Ca_nsr calcium.Ca_jsr ina.m ina.hf ina.hs ina.j ina.hsp ina.jp inal.m inal.h inal.hp ito.a "
    "ito.if ito.is ito.ap ito.ifp ito.isp ical.d ical.ff ical.fs ical.fcaf ical.fcas ical.jca ical.nca "
    "ical.ffp ical.fcafp ikr.xf ikr.xs iks.x1 iks.x2 ik1.x ryr.Jrelnp ryr.Jrelp camk.CaMK_trapped"
).split()


def range_error(a: np.ndarray, ref: np.ndarray, floor: np.ndarray) -> float:
    """Largest |a - ref| over time and states, relative to max(range of ref, floor) per state."""
    scale = np.maximum(ref.max(axis=-1) - ref.min(axis=-1), floor)
    return float((np.abs(a - ref).max(axis=-1) / scale).max())


def timed(fn, repeats: int = 1):
    """(result of the last call, median CPU seconds, median wall seconds)."""
    cpu, wall = [], []
    out = None
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        out = fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return out, statistics.median(cpu), statistics.median(wall)


def one_beat(args, model, floor) -> None:
    stim = pulse(80.0, 0.5)
    kw = dict(t_end=T_END, n_points=N_POINTS)
    runs = {}
    for method in args.methods:
        simulate(model, stim, method=method, **kw)  # warm-up: loads the compiled code
    for rnd in range(2):  # the methods alternated, twice
        for method in args.methods:
            traj, c, w = timed(lambda method=method: simulate(model, stim, method=method, **kw), args.repeats)
            runs.setdefault(method, []).append((traj, c, w))
            print(f"one beat  {method:<14}: {1e3 * c:7.1f} ms CPU ({1e3 * w:.1f} ms wall), "
                  f"{traj.stats['steps'][0]} steps, rtol {traj.stats['rtol']:g} [median of {args.repeats}, "
                  f"round {rnd + 1}]")
    fast, c_fast, w_fast = min(runs[args.methods[0]], key=lambda r: r[1])  # its better round
    radau = ReferenceSolver("Radau", tol=1e-10)
    ref_traj, c_ref, _ = timed(lambda: simulate(model, stim, method=radau, **kw))
    ref = ref_traj.states[0]
    print(f"          reference     : SciPy Radau tol 1e-10, {c_ref:.1f} s CPU")
    for method, rr in runs.items():
        print(f"          {method} error: {range_error(rr[0][0].states[0], ref, floor):.2e} of range")
    print(f"          ratios below against {args.methods[0]}'s better round, {1e3 * c_fast:.1f} ms CPU")
    for label, bdf in [("BDF plain ", ReferenceSolver("BDF", max_step=1.0, sparse_jacobian=False,
                                                      vectorized=False)),
                       ("BDF ionfno", ReferenceSolver("BDF", max_step=1.0))]:
        traj, c_bdf, w_bdf = timed(lambda bdf=bdf: simulate(model, stim, method=bdf, rtol=1e-6, atol=1e-6,
                                                            **kw))
        print(f"          {label}    : {c_bdf:7.2f} s CPU -> fast is {c_bdf / c_fast:5.0f}x faster (CPU), "
              f"{w_bdf / w_fast:.0f}x (wall); error {range_error(traj.states[0], ref, floor):.2e} "
              f"[rtol = atol = 1e-6, max_step 1 ms]")
    if args.myokit_mmt:
        myokit_beat(args, model, floor, ref, c_fast)



def myokit_beat(args, model, floor, ref, c_fast) -> None:
    try:
        import myokit
    except ImportError:
        print("          Myokit        : not installed (pip install myokit; apt libsundials-dev)")
        return
    m, _, _ = myokit.load(args.myokit_mmt)
    m.get("cell.mode").set_rhs(0)  # endocardial
    t_eval = np.linspace(0.0, T_END, N_POINTS)
    proto = myokit.pacing.blocktrain(period=T_END, duration=0.5, offset=0.0, level=1.0)
    w0 = time.perf_counter()
    sim = myokit.Simulation(m, proto)
    compile_wall = time.perf_counter() - w0
    y0 = model.default_state()
    start = [y0[MYOKIT_NAMES.index(v.qname())] for v in m.states()]  # Myokit's own state order

    def run():
        sim.reset()
        sim.set_state(start)
        return sim.run(T_END + 1e-9, log=MYOKIT_NAMES, log_times=t_eval)

    d, c_myo, w_myo = timed(run, args.repeats)
    states = np.array([d[n] for n in MYOKIT_NAMES])[:, :N_POINTS]
    # Myokit's transcription is not ours (its V peak is higher), so its solver error is taken
    # against itself at tight tolerances; the transcription gap is printed apart.
    sim.set_tolerance(1e-10, 1e-10)
    tight = np.array([run()[n] for n in MYOKIT_NAMES])[:, :N_POINTS]
    err = range_error(states, tight, floor)
    gap = range_error(tight, ref, floor)
    print(f"          Myokit CVODES : {1e3 * c_myo:7.1f} ms CPU ({1e3 * w_myo:.1f} ms wall) -> "
          f"fast / Myokit = {c_fast / c_myo:.2f} (CPU); error {err:.2e} against Myokit at tol 1e-10 "
          f"[myokit {myokit.__version__}, default tolerances; compile {compile_wall:.1f} s]")
    print(f"          Myokit model  : its ORd vs ours, both tight: {gap:.2e} of range; V peak "
          f"{tight[0].max():.2f} vs {ref[0].max():.2f} mV (ours matches the authors' MATLAB code)")


def pacing(args, model) -> None:
    pace(model, amplitude=80.0, duration=0.5, period=T_END, n_beats=2)  # warm-up
    res, c, w = timed(lambda: pace(model, amplitude=80.0, duration=0.5, period=T_END, n_beats=args.beats))
    print(f"pacing    {args.beats} beats     : {w:6.2f} s wall, {c:.2f} s CPU ({1e3 * c / args.beats:.1f} ms "
          f"CPU per beat incl. biomarkers, {N_POINTS} points per beat); APD90 beat 1 "
          f"{res.beats['apd90'][0]:.2f} ms, beat {args.beats} {res.beats['apd90'][-1]:.2f} ms")


def batch(args, model) -> None:
    import mmap
    import resource

    from ionfno.solvers import compiled

    rng = np.random.default_rng(0)
    stim = pulse(rng.uniform(30.0, 100.0, args.batch), rng.uniform(0.3, 1.5, args.batch))
    kw = dict(t_end=T_END, n_points=args.batch_points, threads=args.threads)
    simulate(model, stim.select(np.arange(2)), **kw)
    # The solver's pre-faulted output (solvers.base.output_array) against the baseline
    # np.empty (NumPy's huge-page advice for large arrays) and against 4 KiB pages faulted in
    # one by one on first write (what output_array would be without MAP_POPULATE), alternated.
    def small_pages(shape):
        buf = mmap.mmap(-1, 8 * int(np.prod(shape)))
        buf.madvise(mmap.MADV_NOHUGEPAGE)
        return np.frombuffer(buf, dtype=np.float64).reshape(shape)

    allocators = {"output_array": compiled.output_array, "np.empty": np.empty,
                  "4 KiB pages on demand": small_pages}
    if not args.allocators:
        allocators = {"output_array": compiled.output_array}
    cases = [(m, label) for m in args.methods for label in allocators]
    for rep in range(2):
        for method, label in cases:
            alloc = allocators[label]
            compiled.output_array = alloc
            r0 = resource.getrusage(resource.RUSAGE_SELF)
            try:
                traj, c, w = timed(lambda method=method: simulate(model, stim, method=method, **kw))
            finally:
                compiled.output_array = allocators["output_array"]
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            sys_ms = 1e3 * (r1.ru_stime - r0.ru_stime) / args.batch
            fired = np.mean(traj.states[:, 0].max(axis=1) > 0.0)
            print(f"batch     {args.batch} cells    : {w:6.2f} s wall, {c:.2f} s CPU on {args.threads} thread(s): "
                  f"{1e3 * c / args.batch:.1f} ms CPU per beat per core, of it {sys_ms:.1f} ms system "
                  f"({1e3 * w * args.threads / args.batch:.1f} ms wall x threads); "
                  f"{traj.stats['steps'].mean():.0f} steps/beat, {fired:.0%} fire, {args.batch_points} points, "
                  f"{method}, output from {label} (round {rep + 1})")
            del traj


def table_spacing(args, model) -> None:
    """The ORd lookup table's spacing: time of the compiled integration alone (one cell, one
    beat, 10080 points; best of 15) and the beat's largest change against the exact vector
    field, relative to each state's range, for a few spacings."""
    from ionfno.ionic.kernels import ord as kernel
    from ionfno.solvers import _rl2_numba
    from ionfno.solvers.compiled import CompiledSolver

    params = model.default_params()
    rhs, exact = model.kernel(params)
    packed = {"exact": exact}
    default_dv = kernel.TABLE_DV
    try:
        for dv in (0.01, 0.02, 0.05):
            kernel.TABLE_DV = dv
            packed[f"{dv:g} mV"] = kernel.pack(params, tables=True)
    finally:
        kernel.TABLE_DV = default_dv
    # one vector-field evaluation, in a compiled loop over V from -80 to -42 mV
    from numba import njit

    @njit
    def evaluations(rhs, y, p, f, a, n):
        for i in range(n):
            y[0] = -80.0 + (i & 127) * 0.3
            rhs(0.0, y, p, 0.0, f, a)
        return f[0]

    y = model.default_state().astype(np.float64)
    f, a = np.empty_like(y), np.empty_like(y)
    for label in ("exact", "0.05 mV"):
        evaluations(rhs, y, packed[label], f, a, 10)
        best = min(timed(lambda label=label: evaluations(rhs, y, packed[label], f, a, 200_000))[1]
                   for _ in range(5))
        print(f"table     rhs {label:<8} : {1e9 * best / 200_000:6.0f} ns CPU per vector-field evaluation")
    y0 = model.default_state()[None, :].astype(np.float64)
    pieces = pulse(80.0, 0.5).pieces(T_END)
    stops, v_start, v_end = (np.ascontiguousarray(a, dtype=np.float64) for a in pieces)
    rtol, atol = CompiledSolver().default_tolerances(model)
    gate = np.asarray(model.gate_mask, dtype=np.bool_)
    atol = np.ascontiguousarray(atol)

    def integrate(p, n_points):
        """(output, steps, best CPU seconds of 15) of the compiled loop alone on ``n_points``."""
        out = np.empty((1, model.n_states, n_points))
        status, steps, rej = np.zeros(1, np.int8), np.zeros(1, np.int64), np.zeros(1, np.int64)
        call = (rhs, y0, p, stops, v_start, v_end, np.linspace(0.0, T_END, n_points), T_END, rtol, atol, gate,
                0.0, np.inf, 10_000_000, out, status, steps, rej)
        _rl2_numba.integrate_batch_serial(*call)
        best = min(timed(lambda: _rl2_numba.integrate_batch_serial(*call))[1] for _ in range(15))
        return out[0], steps[0], best

    outs = {}
    for label, p in packed.items():
        outs[label], steps, best = integrate(p, N_POINTS)
        err = range_error(outs[label], outs["exact"], state_floor(model))
        print(f"table     {label:<8}     : {1e3 * best:6.2f} ms CPU for the integration alone "
              f"({p.nbytes / 1e6:.1f} MB packed), {steps} steps; change against the exact vector field "
              f"{err:.1e} of range")
    # what filling the output grid costs: the same beat onto 2 points (its ends) instead
    _, _, best2 = integrate(packed["0.05 mV"], 2)
    print(f"table     0.05 mV, 2 points: {1e3 * best2:6.2f} ms CPU: the {N_POINTS}-point output costs "
          f"the difference")


_COMPILE_SNIPPET = (
    "import time; t = time.perf_counter(); from ionfno.solvers import simulate; "
    "from ionfno.stimulus import pulse; t1 = time.perf_counter(); "
    "simulate('ord', pulse(80.0, 0.5), t_end=1000.0); t2 = time.perf_counter(); "
    "simulate('ord', pulse(80.0, 0.5), t_end=1000.0); t3 = time.perf_counter(); "
    "print(t1 - t, t2 - t1, t3 - t2)"
)


def compile_times() -> None:
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as cache:
        env["NUMBA_CACHE_DIR"] = cache
        for label in ("cold  ", "cached"):
            out = subprocess.run([sys.executable, "-c", _COMPILE_SNIPPET], env=env, capture_output=True,
                                 text=True, check=True).stdout.split()
            imp, first, second = (float(x) for x in out)
            print(f"compile   {label}        : import {imp:.2f} s, first ORd beat {first:.2f} s "
                  f"(compile or load + run), second beat {1e3 * second:.0f} ms")


def cli_time() -> None:
    exe = os.path.join(os.path.dirname(sys.executable), "ionfno")
    with tempfile.TemporaryDirectory() as d:
        cmd = [exe, "simulate", "ord", "--amplitude", "80", "--duration", "0.5",
               "--out", os.path.join(d, "o.npz")]
        subprocess.run(cmd, check=True, capture_output=True)  # fills the cache if needed
        w0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        print(f"CLI       ionfno simulate: {time.perf_counter() - w0:.2f} s wall for one ORd beat, "
              f"new process, cache warm ({' '.join(cmd[1:6])} ...)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--beats", type=int, default=200)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--batch-points", type=int, default=10080)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--myokit-mmt", default=None, help="Myokit's ohara-2011.mmt (optional column)")
    ap.add_argument("--skip", nargs="*", default=[],
                    choices=["beat", "pacing", "batch", "tables", "compile", "cli"])
    ap.add_argument("--methods", nargs="+", default=["fast", "fast_exact"],
                    help="solvers timed in the beat and batch sections, alternated (the first is the "
                         "baseline of the BDF/Myokit ratios); default: fast (ORd's lookup tables) and "
                         "fast_exact (every exponential evaluated)")
    ap.add_argument("--allocators", action="store_true",
                    help="batch section: also np.empty and 4 KiB pages on demand as the output array "
                         "(the 2026-12-07 huge-page comparison)")
    args = ap.parse_args()
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"numpy {np.__version__}; load average {os.getloadavg()[0]:.1f} at start")
    model = get_model("ord")
    floor = state_floor(model)
    if "beat" not in args.skip:
        one_beat(args, model, floor)
    if "pacing" not in args.skip:
        pacing(args, model)
    if "batch" not in args.skip:
        batch(args, model)
    if "tables" not in args.skip:
        table_spacing(args, model)
    if "compile" not in args.skip:
        compile_times()
    if "cli" not in args.skip:
        cli_time()
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
