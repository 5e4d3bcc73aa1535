"""What every solver returns and shares: status codes, the trajectory, input checks, scales.

A solver integrates a batch of ``B`` cells of one model, each under its own stimulus, and
returns a :class:`Trajectory` on a common output grid. Failures are values: each sample
carries a :class:`Status`; a failed sample keeps its finite data up to the failure and NaN
after it, and never affects the other samples.
"""

from __future__ import annotations

import math
import mmap
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, ClassVar

import numpy as np

from ..ionic.base import IonicModel
from ..stimulus import Stimulus

__all__ = ["Status", "Trajectory", "Solver", "state_floor", "UNIT_FLOOR", "output_array"]


class Status(IntEnum):
    """Per-sample outcome of an integration (stored as ``int8``)."""

    OK = 0  # reached t_end
    NONFINITE = 1  # the state or its derivative became NaN/inf and no smaller step helped
    MAX_STEPS = 2  # ran out of steps (max_steps) before t_end
    SOLVER_ERROR = 3  # the underlying solver reported a failure (e.g. SciPy's step size underflow)


@dataclass
class Trajectory:
    """A batch of simulated trajectories on one output grid.

    Attributes
    ----------
    t : ndarray, shape (N,), float64
        Output times [time unit].
    states : ndarray, shape (B, n_states, N), float64
        States in model units; NaN after a sample's failure.
    status : ndarray, shape (B,), int8
        :class:`Status` code per sample.
    i_app : ndarray, shape (B, N), float64
        ``stimulus.sample(t)``: the sampled input (the study's closed-pulse convention).
    state_names : tuple of str
        Model order of the ``n_states`` axis.
    model_name : str
        Registry name of the model.
    stats : dict
        ``solver``, ``rtol``, ``atol``, ``dt``; ``steps`` (B,) accepted steps,
        ``rejected`` (B,) rejected steps, ``rhs_evals`` (B,) vector-field evaluations per
        sample; ``wall_time`` [s] for the whole batch.
    """

    t: np.ndarray
    states: np.ndarray
    status: np.ndarray
    i_app: np.ndarray
    state_names: tuple[str, ...]
    model_name: str
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> np.ndarray:
        """Boolean mask ``(B,)`` of samples that reached ``t_end``."""
        return self.status == Status.OK

    def state(self, name: str, model: IonicModel | None = None) -> np.ndarray:
        """One state over time, shape ``(B, N)``; aliases need ``model``."""
        i = model.state_index(name) if model is not None else self.state_names.index(name)
        return self.states[:, i, :]


# Smallest range that is still called a "range" of a state, per unit. Used twice: as the
# absolute-tolerance scale of the solvers' error norms, and as the guard of range-relative
# error metrics (error / max(range, floor)), so that a state that barely moves in a run (a
# gate that stays at 1, Na_i over one beat) is judged on an absolute scale rather than on
# its own rounding noise. Units not listed fall back to DEFAULT_FLOOR.
UNIT_FLOOR: dict[str, float] = {
    "mV": 1.0,  # membrane potential
    "1": 1e-2,  # gates, dimensionless states (FHN)
    "": 1e-2,
    "mM": 1e-5,  # concentrations: resting Ca_i is ~1e-4 mM
    "mM/ms": 1e-6,  # ORd's J_rel states
}
DEFAULT_FLOOR = 1e-6


def state_floor(model: IonicModel) -> np.ndarray:
    """Per-state floor of a meaningful range (see ``UNIT_FLOOR``), shape ``(n_states,)``."""
    return np.array([UNIT_FLOOR.get(u, DEFAULT_FLOOR) for u in model.state_units])


class Solver:
    """Interface of the solvers in :data:`ionfno.solvers.SOLVERS`.

    Attributes
    ----------
    name : str
        Registry name.
    order : int
        Classical order of convergence of the scheme (checked by the test suite).
    adaptive : bool
        Whether the step size is error controlled (``dt`` then only sets the first step).
    """

    name: ClassVar[str] = ""
    order: int = 0
    adaptive: bool = True

    def default_tolerances(self, model: IonicModel) -> tuple[float, np.ndarray]:
        """``(rtol, atol)``: the recommended tolerances, atol per state ``(n_states,)``."""
        raise NotImplementedError

    def solve(
        self,
        model: IonicModel,
        stimulus: Stimulus,
        t_eval: np.ndarray,
        t_end: float,
        y0: np.ndarray,
        params: Any,
        *,
        rtol: float,
        atol: np.ndarray,
        dt: float | None,
        max_steps: int | None,
        progress: bool,
        chunk_size: int | None = None,
        threads: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Integrate; return ``states (B, n_states, N)``, ``status (B,)`` int8, ``stats``.

        ``chunk_size`` and ``threads`` are hints (samples per batch or per progress update,
        threads of a parallel solver) that never change the result; solvers may ignore them.
        """
        raise NotImplementedError


PREFAULT_FROM = 4 << 20
"""Outputs of at least this many bytes [B] are mapped and pre-faulted by :func:`output_array`."""


def output_array(shape: tuple[int, ...]) -> np.ndarray:
    """An uninitialised float64 array for a solver's dense output, mapped with its pages in.

    Why not ``np.empty``: NumPy asks Linux for transparent huge pages on every array of 4 MiB
    or more (``madvise(MADV_HUGEPAGE)``); where THP runs with ``defrag = madvise`` (common on
    VMs), the first write into each 2 MiB page can stall in direct memory compaction, inside
    the solver's loop. Measured on this project's 2-core VM, ORd on the 10080-point grid
    (3.3 MB of output per cell, ``benchmarks/bench_solvers.py``, BENCHMARKS.md): 7-8 ms of
    system time per cell that way against 1.5-1.9 ms in 4 KiB pages, whether faulted in on
    first write or, as here, populated in one call (``MAP_POPULATE``). The array owns its
    mapping and frees it when collected.

    Parameters
    ----------
    shape : tuple of int
        e.g. (B, n_states, N).

    Returns
    -------
    ndarray
        C-contiguous, writable, float64; contents undefined (zeros when freshly mapped).
    """
    n_bytes = 8 * math.prod(shape)
    if n_bytes < PREFAULT_FROM or not hasattr(mmap, "MAP_POPULATE"):
        return np.empty(shape)
    buf = mmap.mmap(-1, n_bytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | mmap.MAP_POPULATE)
    return np.frombuffer(buf, dtype=np.float64).reshape(shape)


def check_positive(name: str, value: Any, n_states: int) -> np.ndarray | float:
    """A tolerance or step: a positive finite scalar, or ``(n_states,)`` positive array."""
    a = np.asarray(value, dtype=np.float64)
    if a.ndim == 0:
        if not (math.isfinite(float(a)) and float(a) > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        return float(a)
    if a.shape != (n_states,):
        raise ValueError(f"{name} must be a scalar or have shape ({n_states},) (one per state), "
                         f"got {a.shape}")
    if not (np.all(np.isfinite(a)) and np.all(a > 0)):
        raise ValueError(f"{name} must be finite and > 0 for every state")
    return a
