"""``fast``: adaptive compiled schemes, one loop per cell, parallel over cells.

The product solver. Its default scheme is the exponential RL2 with the same error control,
stepping onto stimulus edges, dense output and per-sample status as the NumPy
:class:`~ionfno.solvers.exponential.ExponentialSolver` (whose module docstring gives the
equations), but each cell is integrated by its own compiled loop
(:mod:`ionfno.solvers._rl2_numba`) calling the model's compiled one-cell vector field
(:meth:`ionfno.ionic.IonicModel.kernel`), and the cells of a batch run in parallel on numba's
threads. For HH it uses a compiled Dormand–Prince 5(4) instead (:mod:`~ionfno.solvers._dp5_numba`,
:data:`DEFAULT_SCHEME`): at the tight tolerance HH's ground truth needs, a fifth-order scheme
takes ~100x fewer steps. One code path for one cell and for 10 000: a lone cell costs what it
costs inside a batch (ORd, one 1000 ms beat at the default tolerance: 7580 steps, about 9 ms
with ORd's voltage lookup tables; BENCHMARKS.md), where the NumPy solver needed hundreds of
cells to share its per-step overhead.

Compilation: numba compiles the integrator and each model's vector field on first use and
caches the machine code on disk (``__pycache__`` beside the sources, or ``NUMBA_CACHE_DIR``);
later processes load it in a fraction of a second. The first run after an install pays the
compilation (seconds; BENCHMARKS.md lists cold and cached times).

Caveat (myokit's, for its own Rush–Larsen option): stability does not imply accuracy. The
exponential update keeps fast gates stable at any step; accuracy comes from the error
control, whose default tolerances are calibrated per model against the SciPy reference
(:data:`~ionfno.solvers.exponential.DEFAULT_TOL`, per model whatever the scheme).
"""

from __future__ import annotations

import contextlib
import math
from typing import ClassVar

import numpy as np

from ..ionic.base import IonicModel
from .base import Solver, output_array, state_floor
from .exponential import DEFAULT_TOL, DEFAULT_TOL_OTHER

__all__ = [
    "CompiledSolver", "DEFAULT_MAX_STEPS", "DEFAULT_SCHEME", "SCHEMES", "TABLES_MIN_RTOL",
]

SCHEMES = ("rl2", "dopri5")
"""The compiled integration schemes (:class:`CompiledSolver`'s ``scheme``)."""

DEFAULT_SCHEME: dict[str, str] = {"hh": "dopri5"}
"""The scheme ``method="fast"`` uses per model (others: ``"rl2"``). HH: Dormand–Prince, whose
steps at the tight tolerance HH's ground truth needs are ~100x fewer than RL2's (BENCHMARKS.md);
ORd's fast gates need RL2's exponential update; FHN is cheap either way and stays on RL2."""

TABLES_MIN_RTOL = 2e-5
"""Smallest ``rtol`` at which ``fast`` uses a model's lookup tables by default. ORd's table
moves a beat by about 1e-5 of a state's range; the error of the tolerance itself is about
1.6 rtol (8e-5 at the default 5e-5), so below 2e-5 the table would dominate and the exact
vector field is used."""

DEFAULT_MAX_STEPS = 10_000_000
"""Default step limit per sample (accepted + rejected). Far above what any tolerance down to
1e-8 needs on the dataset mixtures (HH, 100 ms of repetitive firing at rtol 1e-8: ~0.4
million steps), so a tighter tolerance never fails where a looser one succeeds; it only stops an
integration that makes no progress (a few seconds to a minute of CPU for one sample)."""


class CompiledSolver(Solver):
    """Adaptive RL2 (exponential Heun) with numba: one compiled loop per cell.

    Parameters
    ----------
    tol : float or None
        Default tolerance: ``rtol = tol``, ``atol = tol * floor`` per state (floors from
        :data:`ionfno.solvers.base.UNIT_FLOOR`). None: the per-model value in
        :data:`~ionfno.solvers.exponential.DEFAULT_TOL`.
    max_step : float
        Largest step [time unit].
    scheme : {"rl2", "dopri5"} or None
        ``"rl2"`` (``method="rl2"``): exponential RL2 on the gates, Heun on the rest, second
        order, stable on stiff gates at any step (ORd, FHN). ``"dopri5"`` (``method="dopri5"``):
        explicit Dormand–Prince 5(4), for models that are not stiff at the steps their accuracy
        needs (HH at rtol 5e-9: 100x fewer steps and 100x smaller errors than RL2;
        :mod:`ionfno.solvers._dp5_numba`). ``None`` (default, ``method="fast"``): the model's
        entry in :data:`DEFAULT_SCHEME`, else RL2. Both schemes share the stimulus-edge
        stepping, error norm, status codes and compiled vector fields.
    tables : bool or None
        Let the model interpolate its voltage-dependent terms from lookup tables where it has
        them (ORd: :data:`ionfno.ionic.kernels.ord.TABLE_DV`; a 2.5x cheaper vector field that
        moves a beat by about 1e-5 of each state's range, BENCHMARKS.md). ``None`` (default):
        only at ``rtol >= TABLES_MIN_RTOL``, where the tolerance's own error is several times
        larger, so that tighter tolerances keep converging to the exact model. ``False``
        (``method="fast_exact"``) evaluates every exponential: the NumPy model to rounding.

    Notes
    -----
    With ``dt`` given to :meth:`solve`, the solver takes fixed steps of ``dt`` (still
    stepping onto every stimulus edge), as the NumPy solver does. ``chunk_size`` only sets how
    many cells run between two updates of the progress bar; ``threads`` sets numba's threads
    for the call (default ``NUMBA_NUM_THREADS``: all cores unless set). Results do not depend
    on either.
    """

    name: ClassVar[str] = "fast"
    order = 2  # of RL2; a "dopri5" instance says 4, and "fast" integrates HH with dopri5
    adaptive = True

    def __init__(self, *, tol: float | None = None, max_step: float = math.inf, tables: bool | None = None,
                 scheme: str | None = None) -> None:
        if scheme is not None and scheme not in SCHEMES:
            raise ValueError(f"Unknown scheme {scheme!r}; expected one of {list(SCHEMES)} "
                             "or None (the model's, DEFAULT_SCHEME)")
        self.tol = tol
        self.max_step = max_step
        self.tables = tables if tables is None else bool(tables)
        self.scheme = scheme
        if scheme is not None:
            self.name = scheme
        if scheme == "dopri5":
            self.order = 4  # fifth-order steps; the cubic Hermite dense output is fourth order

    def scheme_for(self, model: IonicModel) -> str:
        """The scheme this solver integrates ``model`` with (``"rl2"`` or ``"dopri5"``)."""
        return self.scheme if self.scheme is not None else DEFAULT_SCHEME.get(model.name, "rl2")

    def __repr__(self) -> str:
        return (f"CompiledSolver(tol={self.tol}, max_step={self.max_step}, tables={self.tables}, "
                f"scheme={self.scheme!r})")

    def default_tolerances(self, model: IonicModel) -> tuple[float, np.ndarray]:
        # per model, whatever the scheme (HH's 5e-9 was measured with both: BENCHMARKS.md)
        tol = self.tol if self.tol is not None else DEFAULT_TOL.get(model.name, DEFAULT_TOL_OTHER)
        return tol, tol * state_floor(model)

    def solve(self, model, stimulus, t_eval, t_end, y0, params, *, rtol, atol, dt, max_steps, progress,
              chunk_size=None, threads=None):
        import numba

        # Import (and on a cold cache compile) only the scheme this model uses.
        if self.scheme_for(model) == "dopri5":
            from . import _dp5_numba as kernels
        else:
            from . import _rl2_numba as kernels
        tables = self.tables if self.tables is not None else rtol >= TABLES_MIN_RTOL
        rhs, p = model.kernel(params, tables=tables)
        B, n = y0.shape
        N = t_eval.shape[0]
        # The compiled signature wants C-contiguous, writable float64 arrays: fresh copies
        # (a protocol's pieces may be views or Fortran-ordered).
        stops, v_start, v_end = (np.array(a, dtype=np.float64, order="C") for a in stimulus.pieces(t_end))  # (B, K)
        p = np.ascontiguousarray(p, dtype=np.float64)  # read only; a table is megabytes
        t_eval = np.array(t_eval, dtype=np.float64)
        atol = np.array(np.broadcast_to(atol, (n,)), dtype=np.float64)
        gate = np.array(model.gate_mask, dtype=np.bool_)
        y0 = np.array(y0, dtype=np.float64)
        if max_steps is None:
            max_steps = (int(math.ceil(t_end / dt)) + 2 * stops.shape[1] + 10) if dt is not None \
                else DEFAULT_MAX_STEPS
        states = output_array((B, n, N))
        status = np.zeros(B, dtype=np.int8)
        steps = np.zeros(B, dtype=np.int64)
        rejected = np.zeros(B, dtype=np.int64)

        # Threads: one cell, or one thread, runs on the calling thread without ever starting
        # numba's thread pool (OpenMP: start-up time, and a later fork would be unsafe).
        n_threads = numba.config.NUMBA_NUM_THREADS
        if threads is not None:
            n_threads = max(1, min(int(threads), n_threads))
        parallel = n_threads > 1 and B > 1
        # Without a progress bar the whole batch is one call; with one, chunks of about 1 % of
        # it (at least 4 per thread) so the bar moves and the threads stay busy.
        chunk = int(chunk_size or max(4 * n_threads, -(-B // 100))) if progress else B
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=B, desc=f"{model.name} ({self.name})", unit="sample")
        with contextlib.ExitStack() as stack:
            if bar is not None:
                stack.callback(bar.close)
            run = kernels.integrate_batch_serial
            if parallel:
                run = kernels.integrate_batch()
                stack.callback(numba.set_num_threads, numba.get_num_threads())
                numba.set_num_threads(n_threads)
                # Cells differ in cost (a firing cell takes several times the steps of a quiet
                # one): hand them to the threads one at a time rather than in equal blocks.
                stack.enter_context(numba.parallel_chunksize(1))
            for lo in range(0, B, chunk):
                hi = min(lo + chunk, B)
                run(rhs, y0[lo:hi], p, stops[lo:hi], v_start[lo:hi], v_end[lo:hi], t_eval, float(t_end),
                    float(rtol), atol, gate, 0.0 if dt is None else float(dt), float(self.max_step),
                    int(max_steps), states[lo:hi], status[lo:hi], steps[lo:hi], rejected[lo:hi])
                if bar is not None:
                    bar.update(hi - lo)
        return states, status, {"steps": steps, "rejected": rejected, "rhs_evals": 2 * (steps + rejected)}
