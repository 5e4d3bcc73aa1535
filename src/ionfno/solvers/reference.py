"""Reference solver: SciPy's stiff integrators, one sample at a time, piecewise between edges.

Ground truth for the tests and for validating datasets. Each sample is integrated with
:func:`scipy.integrate.solve_ivp` separately on every piece between consecutive stimulus
discontinuities (``stimulus.jump_times``), restarting the integrator at each edge, so that no
step straddles a jump and the stimulus is evaluated on the right piece
(``stimulus.current(t, within)``). The output grid is filled from the pieces' ``t_eval``;
states are continuous, so a grid point on an edge is taken from the piece that ends there.

The model's batched vector field is passed with ``vectorized=True`` so that SciPy's
finite-difference Jacobian costs one call for all columns, and a sparsity pattern of the
Jacobian (probed once per model from random states) lets SciPy group the columns.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, ClassVar

import numpy as np
from scipy.integrate import solve_ivp

from ..ionic.base import IonicModel
from .base import Solver, Status, state_floor

__all__ = ["ReferenceSolver", "jacobian_sparsity"]

class _TooManyEvaluations(Exception):
    pass


_SPARSITY: dict[tuple[str, str], np.ndarray] = {}


def jacobian_sparsity(model: IonicModel, params: Any, y0: np.ndarray, n_probe: int = 8) -> np.ndarray:
    """Structural nonzeros of ``d rhs / d y``, shape ``(n, n)`` bool, probed numerically.

    Each column is perturbed at ``n_probe`` random states around ``y0`` (relative spread
    50 %, gates in (0, 1)) with and without an applied current; an entry is structurally
    nonzero if any probe changes it. The diagonal is always included.
    """
    rng = np.random.default_rng(0)
    n = y0.shape[0]
    gates = model.gate_mask
    ys = y0[None, :] * (1.0 + 0.5 * rng.uniform(-1, 1, (n_probe, n)))
    ys[:, gates] = rng.uniform(0.05, 0.95, (n_probe, int(gates.sum())))
    i_app = np.where(np.arange(n_probe) % 2 == 0, 0.0, 10.0)
    f = model.rhs(0.0, ys, params, i_app)
    pattern = np.eye(n, dtype=bool)
    for j in range(n):
        yp = ys.copy()
        dj = 1e-6 * np.maximum(np.abs(ys[:, j]), 1e-3)
        yp[:, j] += dj
        diff = model.rhs(0.0, yp, params, i_app) - f
        pattern[:, j] |= np.any(diff != 0.0, axis=0)
    return pattern


class ReferenceSolver(Solver):
    """SciPy ``solve_ivp`` per sample, restarted at every stimulus edge.

    Parameters
    ----------
    method : {"BDF", "LSODA", "Radau"}
        SciPy integrator (stiff ones only; the models are stiff).
    tol : float
        Default tolerance: ``rtol = tol`` and ``atol = tol * floor`` per state, with floors from
        :data:`ionfno.solvers.base.UNIT_FLOOR` (1 mV for V, 1e-2 for gates, 1e-5 mM for
        concentrations, ...): per-state ``atol`` because ORd mixes V ~ -85 mV with Ca_i ~ 1e-4 mM.
        The default 1e-8 is tight enough to be ground truth for a 1e-3 (of each variable's
        range) comparison.
    max_step : float
        Largest step [time unit] (the reference study used 1 ms with BDF).
    sparse_jacobian : bool
        Pass the probed Jacobian sparsity pattern to SciPy (BDF and Radau only).
    vectorized : bool
        Let SciPy evaluate the Jacobian's columns in one batched call. ``False`` (with
        ``sparse_jacobian=False``) is plain ``solve_ivp`` usage, as in the reference study.

    Notes
    -----
    ``max_steps`` limits the vector-field evaluations per sample (SciPy does not expose its
    step count while running); ``dt`` sets SciPy's ``first_step``.
    """

    name: ClassVar[str] = "reference"
    order = 5  # BDF/LSODA vary their order up to 5; not checked by the order tests
    adaptive = True

    def __init__(self, method: str = "BDF", *, tol: float = 1e-8, max_step: float = math.inf,
                 sparse_jacobian: bool = True, vectorized: bool = True) -> None:
        if method not in ("BDF", "LSODA", "Radau"):
            raise ValueError(f"Unknown SciPy method {method!r}; expected one of ['BDF', 'LSODA', 'Radau']")
        self.method = method
        self.tol = tol
        self.max_step = max_step
        self.sparse_jacobian = sparse_jacobian
        self.vectorized = vectorized

    def __repr__(self) -> str:
        return (f"ReferenceSolver({self.method!r}, tol={self.tol:g}, max_step={self.max_step}, "
                f"sparse_jacobian={self.sparse_jacobian}, vectorized={self.vectorized})")

    def default_tolerances(self, model: IonicModel) -> tuple[float, np.ndarray]:
        return self.tol, self.tol * state_floor(model)

    def solve(self, model, stimulus, t_eval, t_end, y0, params, *, rtol, atol, dt, max_steps, progress,
              chunk_size=None, threads=None):
        B, n = y0.shape
        N = t_eval.shape[0]
        states = np.full((B, n, N), np.nan)
        status = np.zeros(B, dtype=np.int8)
        lus = np.zeros(B, dtype=np.int64)
        evals = np.zeros(B, dtype=np.int64)
        edges_all = stimulus.jump_times(t_end)
        options: dict[str, Any] = {"rtol": rtol, "atol": atol, "max_step": self.max_step}
        if dt is not None:
            options["first_step"] = dt
        if self.sparse_jacobian and self.method in ("BDF", "Radau"):
            key = (model.name, repr(params))
            if key not in _SPARSITY:
                _SPARSITY[key] = jacobian_sparsity(model, params, y0[0] if np.all(np.isfinite(y0[0]))
                                                   else model.default_state())
            options["jac_sparsity"] = _SPARSITY[key]
        rows = range(B)
        if progress:
            from tqdm.auto import tqdm

            rows = tqdm(rows, desc=f"{model.name} (reference {self.method})", unit="sample")
        for i in rows:
            stim_i = stimulus.select(np.array([i]))
            e = edges_all[i]
            bounds = np.concatenate([[0.0], e[np.isfinite(e)], [t_end]])
            states[i, :, t_eval <= 0.0] = y0[i]
            y = y0[i].copy()
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
                if hi <= lo:
                    continue
                within = np.array([0.5 * (lo + hi)])

                def fun(t, yy, within=within, stim_i=stim_i, i=i):
                    # yy: (n,) or (n, k) for SciPy's vectorised Jacobian columns
                    evals[i] += 1
                    if max_steps is not None and evals[i] > max_steps:
                        raise _TooManyEvaluations
                    i_app = stim_i.current(np.array([t]), within)[0]
                    if yy.ndim == 1:
                        return model.rhs(t, yy[None, :], params, i_app)[0]
                    return model.rhs(t, yy.T, params, i_app).T

                sel = np.flatnonzero((t_eval > lo) & (t_eval <= hi))
                te = t_eval[sel]
                if te.size == 0 or te[-1] != hi:
                    te = np.append(te, hi)  # the end state starts the next piece
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    try:
                        sol = solve_ivp(fun, (lo, hi), y, method=self.method, t_eval=te,
                                        vectorized=self.vectorized, **options)
                    except _TooManyEvaluations:
                        status[i] = Status.MAX_STEPS
                        break
                    except (ValueError, ArithmeticError, np.linalg.LinAlgError):
                        status[i] = Status.SOLVER_ERROR
                        break
                lus[i] += sol.nlu
                got = sol.y[:, : sel.size]
                good = np.all(np.isfinite(got), axis=0)
                nk = sel.size if good.all() else int(np.argmin(good))
                states[i][:, sel[: min(nk, got.shape[1])]] = got[:, :nk]
                if sol.status != 0 or not np.all(np.isfinite(sol.y)):
                    status[i] = Status.NONFINITE if not np.all(np.isfinite(sol.y)) else Status.SOLVER_ERROR
                    break
                y = sol.y[:, -1]
        return states, status, {"rhs_evals": evals, "lu_decompositions": lus}

