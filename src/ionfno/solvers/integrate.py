"""``simulate``: one entry point for every solver, with the inputs checked once."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from ..ionic.base import IonicModel
from ..ionic.registry import get_model
from ..stimulus import Stimulus
from .base import Solver, Trajectory, check_positive
from .compiled import CompiledSolver
from .exponential import ExponentialSolver
from .reference import ReferenceSolver

__all__ = ["SOLVERS", "get_solver", "simulate"]

SOLVERS: dict[str, Solver] = {
    # The product solver: compiled per cell (numba), parallel over cells, error controlled
    # (dt= -> fixed step); exponential Heun (RL2) with the embedded RL1 estimate, or
    # Dormand-Prince 5(4) for HH (compiled.DEFAULT_SCHEME).
    "fast": CompiledSolver(),
    # The same with every voltage-dependent term evaluated exactly (no lookup tables; for ORd
    # equal to the NumPy model to rounding); "fast" interpolates ORd's from a 0.05 mV table.
    "fast_exact": CompiledSolver(tables=False),
    # One scheme on every model:
    # exponential RL2 (stiff gates: ORd, FHN) and explicit Dormand-Prince 5(4) (HH at the tight
    # tolerances its ground truth needs, where RL2 takes ~100x more steps).
    "rl2": CompiledSolver(scheme="rl2"),
    "dopri5": CompiledSolver(scheme="dopri5"),
    # RL2 in batched NumPy: the tested reference of the compiled RL2, no second product path.
    "fast_numpy": ExponentialSolver("rl2", adaptive=True),
    # SciPy stiff solvers at tight tolerances, restarted at stimulus edges: ground truth.
    "reference": ReferenceSolver("BDF"),
    "reference_lsoda": ReferenceSolver("LSODA"),
    "reference_radau": ReferenceSolver("Radau"),
    # The classical baseline: RL1 gates + forward Euler, fixed dt (default 0.01 time units).
    "rush_larsen": ExponentialSolver("rl1", adaptive=False, dt_default=0.01),
}


def get_solver(method: str | Solver) -> Solver:
    """A registered solver by name (a :class:`Solver` instance is returned unchanged).

    Raises
    ------
    ValueError
        Unknown name; the message lists the valid ones.
    """
    if isinstance(method, Solver):
        return method
    try:
        return SOLVERS[method]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown solver {method!r}; expected one of {sorted(SOLVERS)}") from None


def simulate(
    model: IonicModel | str,
    stimulus: Stimulus,
    *,
    t_end: float,
    n_points: int | None = None,
    t_eval: np.ndarray | None = None,
    y0: np.ndarray | None = None,
    params: Any = None,
    method: str | Solver = "fast",
    rtol: float | None = None,
    atol: float | np.ndarray | None = None,
    dt: float | None = None,
    max_steps: int | None = None,
    progress: bool = False,
    chunk_size: int | None = None,
    threads: int | None = None,
) -> Trajectory:
    """Simulate a batch of cells, one stimulus per sample, on a common output grid.

    Parameters
    ----------
    model : IonicModel or str
        The model, or its registry name (``"fhn"``, ``"hh"``, ``"ord"``, ...).
    stimulus : Stimulus
        Applied current, batch size ``B`` (:mod:`ionfno.stimulus`).
    t_end : float
        End of the window [time unit], > 0. Integration starts at 0.
    n_points : int, optional
        Output grid ``linspace(0, t_end, n_points)`` (default ``model.n_points_default``).
    t_eval : ndarray, shape (N,), optional
        Explicit output times, strictly increasing within ``[0, t_end]``; excludes ``n_points``.
    y0 : ndarray, shape (n_states,) or (B, n_states), optional
        Initial state(s) in model units (default ``model.default_state()``); finite.
    params : Params, optional
        Model parameters shared by the batch (default ``model.default_params()``).
    method : str or Solver
        A name in :data:`SOLVERS` (``"fast"``, ``"fast_exact"``, ``"rl2"``, ``"dopri5"``,
        ``"fast_numpy"``, ``"reference"``, ``"reference_lsoda"``, ``"reference_radau"``,
        ``"rush_larsen"``) or a solver instance.
    rtol, atol : float or ndarray of shape (n_states,), optional
        Tolerances (> 0). Defaults: the solver's (``solver.default_tolerances(model)``); with
        ``rtol`` alone, ``atol = rtol`` x each unit's floor (:func:`state_floor`, the solvers'
        convention). A given ``atol`` applies as is, scalar or per state.
    dt : float, optional
        Fixed step [time unit] (fixed-step mode of ``fast``; the step of ``rush_larsen``;
        the first step of ``reference``).
    max_steps : int, optional
        Step limit per sample (``reference``: vector-field evaluations); samples that reach
        it get ``Status.MAX_STEPS``. Default: ``fast`` 10 million (it only stops an
        integration that makes no progress), ``fast_numpy`` 100 000.
    progress : bool
        Show a tqdm progress bar.
    chunk_size : int, optional
        ``fast_numpy``/``rush_larsen``: samples integrated together (default 512).
        ``fast``: samples per update of the progress bar.
    threads : int, optional
        ``fast``: numba threads for this call (default: numba's, ``NUMBA_NUM_THREADS``).
        Results do not depend on it.

    Returns
    -------
    Trajectory
        ``t`` (N,), ``states`` (B, n_states, N), ``status`` (B,) int8, ``i_app`` (B, N), stats.

    Raises
    ------
    ValueError
        Unknown model or solver, non-positive ``t_end``/tolerances/``dt``, fewer than 2
        output points, a bad ``t_eval``, or ``y0`` of the wrong shape or not finite.
    """
    model = get_model(model)
    solver = get_solver(method)
    if not isinstance(stimulus, Stimulus):
        raise ValueError(f"stimulus must be an ionfno.stimulus.Stimulus, got {type(stimulus).__name__}")
    t_end, grid, y0, params, rtol, atol, dt = _check_inputs(
        model, solver, stimulus, t_end, n_points, t_eval, y0, params, rtol, atol, dt, max_steps, chunk_size,
        threads)
    t0 = time.perf_counter()
    states, status, stats = solver.solve(model, stimulus, grid, t_end, y0, params, rtol=rtol, atol=atol,
                                         dt=dt, max_steps=max_steps, progress=progress, chunk_size=chunk_size,
                                         threads=None if threads is None else int(threads))
    wall = time.perf_counter() - t0
    stats = {"solver": repr(solver), "rtol": rtol, "atol": atol, "dt": dt, **stats, "wall_time": wall}
    return Trajectory(
        t=grid,
        states=states,
        status=status,
        i_app=stimulus.sample(grid),
        state_names=tuple(model.state_names),
        model_name=model.name,
        stats=stats,
    )


def _check_inputs(model, solver, stimulus, t_end, n_points, t_eval, y0, params, rtol, atol, dt, max_steps,
                  chunk_size, threads):
    n = model.n_states
    B = stimulus.batch_size
    try:
        t_end = float(t_end)
    except (TypeError, ValueError):
        raise ValueError(f"t_end must be a number, got {t_end!r}") from None
    if not (math.isfinite(t_end) and t_end > 0):
        raise ValueError(f"t_end must be a finite number > 0, got {t_end}")
    if t_eval is not None:
        if n_points is not None:
            raise ValueError("give n_points or t_eval, not both")
        grid = np.asarray(t_eval, dtype=np.float64)
        if grid.ndim != 1 or grid.shape[0] < 2:
            raise ValueError(f"t_eval must be 1-D with at least 2 points, got shape {grid.shape}")
        if not (np.all(np.isfinite(grid)) and np.all(np.diff(grid) > 0)):
            raise ValueError("t_eval must be finite and strictly increasing")
        if grid[0] < 0 or grid[-1] > t_end:
            raise ValueError(f"t_eval must lie in [0, t_end] = [0, {t_end:g}], "
                             f"got [{grid[0]:g}, {grid[-1]:g}]")
    else:
        n_points = model.n_points_default if n_points is None else n_points
        if isinstance(n_points, bool) or int(n_points) != n_points or n_points < 2:
            raise ValueError(f"n_points must be a whole number >= 2, got {n_points!r}")
        grid = np.linspace(0.0, t_end, int(n_points))
    y0 = model.default_state() if y0 is None else np.asarray(y0, dtype=np.float64)
    if y0.ndim == 1:
        y0 = y0[None, :]
    if y0.ndim != 2 or y0.shape[1] != n or y0.shape[0] not in (1, B):
        raise ValueError(f"y0 must have shape ({n},) or ({B}, {n}) for model {model.name!r} "
                         f"({n} states) and a batch of {B}; got {np.shape(y0)}")
    if not np.all(np.isfinite(y0)):
        raise ValueError("y0 must be finite")
    y0 = np.ascontiguousarray(np.broadcast_to(y0, (B, n)))
    params = model.default_params() if params is None else params
    rtol_d, atol_d = solver.default_tolerances(model)
    rtol = rtol_d if rtol is None else check_positive("rtol", rtol, n)
    if atol is None:
        # the solvers' convention atol = tol x each unit's floor, so that --rtol alone moves both
        atol = atol_d * (float(rtol) / rtol_d)
    else:
        atol = check_positive("atol", atol, n)
    if np.ndim(rtol) != 0:
        raise ValueError("rtol must be a scalar")
    atol = np.broadcast_to(np.asarray(atol, dtype=np.float64), (n,)).copy()
    if dt is not None:
        dt = float(check_positive("dt", dt, n))
    bad_steps = max_steps is not None and (
        isinstance(max_steps, bool) or int(max_steps) != max_steps or max_steps < 1)
    if bad_steps:
        raise ValueError(f"max_steps must be a whole number >= 1, got {max_steps!r}")
    if chunk_size is not None and (int(chunk_size) != chunk_size or chunk_size < 1):
        raise ValueError(f"chunk_size must be a whole number >= 1, got {chunk_size!r}")
    if threads is not None and (isinstance(threads, bool) or int(threads) != threads or threads < 1):
        raise ValueError(f"threads must be a whole number >= 1, got {threads!r}")
    return t_end, grid, y0, params, float(rtol), atol, dt
