"""One input, two simulators: the surrogate next to the solver, with its errors and both run times.

:func:`compare_with_solver` is what ``ionfno compare`` and the ``ionfno app`` page call. It
evaluates a :class:`~ionfno.surrogate.Surrogate` and the solver of its ionic model on the
same protocol and on the surrogate's grid ``linspace(0, T, N)``, and measures

* the study's metric per state (relative L2 over time in the point-wise normalised space of
  the training data, :mod:`ionfno.evaluation.metrics`; only for surrogates that keep the
  point-wise statistics, i.e. trained with the study's normaliser),
* physical errors per state: RMSE and largest absolute error, in the state's unit,
* the biomarkers of V of both (:mod:`ionfno.evaluation.biomarkers`: APD90, peak, upstroke),
* the wall time of each (the solver's first call in a process also loads its compiled
  kernels: warm it up before timing, as the app does).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .biomarkers import compute_biomarkers
from .metrics import normalise, relative_lp

__all__ = ["BIOMARKER_KEYS", "Comparison", "compare_with_solver", "biomarkers_of", "default_states"]

#: Biomarkers shown for each trajectory (names of :class:`~ionfno.evaluation.biomarkers.Biomarkers`).
BIOMARKER_KEYS = ("fires", "v_rest", "v_peak", "t_upstroke", "dvdt_max", "apd50", "apd90")


def _jsonable(x: Any) -> Any:
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    f = float(x)
    return f if np.isfinite(f) else None


def biomarkers_of(v: np.ndarray, t: np.ndarray, model: str) -> dict[str, Any]:
    """Biomarkers of one V trace (:data:`BIOMARKER_KEYS`), NaN as None."""
    from ..data.biomarkers import firing_threshold

    bm = compute_biomarkers(np.asarray(v)[None, :], t, threshold=firing_threshold(model)).as_dict()
    return {k: _jsonable(bm[k][0]) for k in BIOMARKER_KEYS}


@dataclass
class Comparison:
    """Surrogate and solver on one input (see the module docstring).

    Attributes
    ----------
    model : str
        Ionic model name.
    t : ndarray, shape (N,)
        The surrogate's grid [time unit].
    i_app : ndarray, shape (N,)
        The applied current sampled on ``t`` [current unit].
    solver, surrogate : ndarray, shape (n_states, N)
        Trajectories in model units.
    state_names, state_units : list of str
    errors : dict of str to dict
        Per state: ``rel_l2`` (study metric, fraction, or None), ``rmse``, ``max_abs`` (state unit).
    rel_l2 : float or None
        The study metric averaged over the states (None without point-wise statistics).
    biomarkers : dict
        ``{"solver": {...}, "surrogate": {...}}`` of V (:data:`BIOMARKER_KEYS`).
    seconds : dict
        Wall time of ``"solver"`` and ``"surrogate"`` [s].
    solver_status : int
        0 when the solver succeeded (:class:`ionfno.solvers.Status`).
    """

    model: str
    t: np.ndarray
    i_app: np.ndarray
    solver: np.ndarray
    surrogate: np.ndarray
    state_names: list[str]
    state_units: list[str]
    errors: dict[str, dict[str, float | None]]
    rel_l2: float | None
    biomarkers: dict[str, dict[str, Any]]
    seconds: dict[str, float]
    solver_status: int
    warnings: list[str] = field(default_factory=list)

    def index(self, state: str) -> int:
        """Position of ``state`` (raises ValueError listing the states)."""
        if state not in self.state_names:
            raise ValueError(f"Unknown state {state!r}; expected some of {self.state_names}")
        return self.state_names.index(state)

    def to_dict(self, states: Sequence[str] | None = None, *, trajectories: bool = False) -> dict[str, Any]:
        """JSON-ready summary; with ``trajectories``, the chosen states' arrays too."""
        out: dict[str, Any] = {
            "model": self.model,
            "rel_l2": self.rel_l2,
            "errors": self.errors,
            "units": dict(zip(self.state_names, self.state_units, strict=True)),
            "biomarkers": self.biomarkers,
            "seconds": self.seconds,
            "solver_status": self.solver_status,
            "warnings": list(self.warnings),
        }
        if trajectories:
            chosen = list(self.state_names if states is None else states)
            out["t"] = self.t.tolist()
            out["i_app"] = self.i_app.tolist()
            out["states"] = {
                s: {
                    "solver": self.solver[self.index(s)].tolist(),
                    "surrogate": self.surrogate[self.index(s)].tolist(),
                }
                for s in chosen
            }
        return out


def compare_with_solver(
    surrogate: Any,
    stimulus: Any,
    *,
    method: str = "fast",
    rtol: float | None = None,
    atol: float | None = None,
    warm_up: bool = True,
) -> Comparison:
    """Run the surrogate and the solver on one protocol (module docstring).

    Parameters
    ----------
    surrogate : ionfno.surrogate.Surrogate
    stimulus : ionfno.stimulus.Stimulus
        One protocol (batch of 1) over the surrogate's window.
    method : str
        Solver (``"fast"``, ``"reference"``, ...; :data:`ionfno.solvers.SOLVERS`).
    rtol, atol : float, optional
        Solver tolerances (default: the solver's for this model).
    warm_up : bool
        Call both once, untimed, before timing them (a first call in a process loads the
        solver's compiled kernels and allocates the network's buffers).

    Returns
    -------
    Comparison
    """
    from ..ionic import get_model
    from ..solvers import simulate

    if stimulus.batch_size != 1:
        raise ValueError(f"compare_with_solver takes one protocol, got a batch of {stimulus.batch_size}")
    model = get_model(surrogate.model_name)
    t = surrogate.t
    x = surrogate.encode(stimulus)
    if warm_up:
        surrogate.predict_array(x)
        simulate(model, stimulus, t_end=t[1], n_points=2, method=method, rtol=rtol, atol=atol)
    t0 = time.perf_counter()
    pred = surrogate.predict_array(x)[0]  # (S, N)
    t_sur = time.perf_counter() - t0
    t0 = time.perf_counter()
    traj = simulate(
        model, stimulus, t_end=surrogate.t_end, n_points=t.shape[0], method=method, rtol=rtol, atol=atol
    )
    t_sol = time.perf_counter() - t0
    true = traj.states[0]
    names, units = list(surrogate.state_names), [surrogate.units[s] for s in surrogate.state_names]

    err = pred - true
    rmse = np.sqrt(np.mean(err**2, axis=-1))
    max_abs = np.max(np.abs(err), axis=-1)
    stats = surrogate.output_statistics()
    rel = None
    if stats is not None:
        mean, std = stats
        rel = relative_lp(normalise(pred[None], mean, std), normalise(true[None], mean, std), 2)[0]
    errors = {
        s: {
            "rel_l2": None if rel is None else _jsonable(rel[c]),
            "rmse": float(rmse[c]),
            "max_abs": float(max_abs[c]),
        }
        for c, s in enumerate(names)
    }
    rel_l2 = None
    if rel is not None and np.isfinite(rel).any():
        rel_l2 = float(np.mean(rel[np.isfinite(rel)]))
    iv = model.state_index("V")
    return Comparison(
        model=surrogate.model_name,
        t=t.copy(),
        i_app=stimulus.sample(t)[0],
        solver=true,
        surrogate=pred,
        state_names=names,
        state_units=units,
        errors=errors,
        rel_l2=rel_l2,
        biomarkers={
            "solver": biomarkers_of(true[iv], t, surrogate.model_name),
            "surrogate": biomarkers_of(pred[iv], t, surrogate.model_name),
        },
        seconds={"solver": t_sol, "surrogate": t_sur},
        solver_status=int(traj.status[0]),
    )


def default_states(state_names: Sequence[str], k: int = 4) -> list[str]:
    """States shown when none are chosen: all of a small model, else V and the main concentrations."""
    names = list(state_names)
    if len(names) <= k:
        return names
    preferred = [s for s in ("V", "Ca_i", "Na_i", "K_i", "Ca_jsr", "CaMK_trapped") if s in names]
    rest = [s for s in names if s not in preferred]
    return (preferred + rest)[:k]
