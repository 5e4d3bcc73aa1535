"""Pacing one cell beat after beat, with biomarkers per beat: the way to a steady state.

The usual first step of a cardiac study is to pace a cell at a fixed rate until beat-to-beat
changes vanish (O'Hara et al. 2011 paced ORd for 1000 beats at 1 Hz). :func:`pace` runs a
train of identical pulses as a sequence of one-beat windows ``[0, period]``, each started
from where the previous one ended, and keeps per beat only what a steady-state check needs:
the biomarkers of :mod:`ionfno.evaluation.biomarkers` (resting V, peak, upstroke time, max
dV/dt, APD50/90) and the state at the end of the beat. The last beat's full trajectory is
returned too, so that its last state starts the next run (``ionfno simulate
--initial-state``).

Beat by beat rather than one long window: memory stays at one beat, the beats' biomarkers
come from the same per-beat grid, and the result is the same as integrating the whole train
in one window (the solver restarts at a stimulus edge anyway; states are continuous).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .data.biomarkers import firing_threshold
from .evaluation.biomarkers import compute_biomarkers
from .ionic import IonicModel, get_model
from .solvers import Trajectory, simulate
from .stimulus import pulse

__all__ = ["PacingResult", "pace", "BEAT_FIELDS"]

BEAT_FIELDS = ("status", "fires", "v_rest", "v_peak", "amplitude", "t_upstroke", "dvdt_max", "apd50",
               "apd90", "steps")
"""Per-beat quantities of :class:`PacingResult` (besides the end-of-beat states)."""


@dataclass
class PacingResult:
    """What :func:`pace` keeps of a paced run of ``n_beats`` beats.

    Attributes
    ----------
    beats : dict of str to ndarray, each shape (n_beats,)
        :data:`BEAT_FIELDS`: solver ``status`` (int; -1 for beats not run after a failure),
        ``fires`` (bool), and the biomarkers of
        :func:`ionfno.evaluation.compute_biomarkers` on each beat's own time axis
        (``t_upstroke`` from the beat's start) [mV, ms, mV/ms], plus ``steps`` (accepted solver
        steps).
    end_states : ndarray, shape (n_beats, n_states)
        State at the end of each beat (the start of the next).
    last : Trajectory
        The last beat, batch of one, on ``linspace(0, period, n_points)``.
    y0 : ndarray, shape (n_states,)
        The state the pacing started from.
    """

    beats: dict[str, np.ndarray]
    end_states: np.ndarray
    last: Trajectory
    y0: np.ndarray

    @property
    def final_state(self) -> np.ndarray:
        """State after the last beat, shape ``(n_states,)``."""
        return self.end_states[-1]


def pace(
    model: IonicModel | str,
    *,
    amplitude: float,
    duration: float,
    period: float,
    n_beats: int,
    onset: float = 0.0,
    y0: np.ndarray | None = None,
    params: Any = None,
    n_points: int | None = None,
    method: str = "fast",
    rtol: float | None = None,
    atol: float | np.ndarray | None = None,
    progress: bool = False,
    on_beat: Callable[[int, dict[str, float]], None] | None = None,
) -> PacingResult:
    """Pace one cell with ``n_beats`` identical pulses, one beat window at a time.

    Parameters
    ----------
    model : IonicModel or str
    amplitude, duration, onset : float
        The pulse of every beat: ``amplitude`` [current unit] from ``onset`` to ``onset +
        duration`` [ms] after the beat's start.
    period : float
        Beat length [ms] (basic cycle length), > onset + duration.
    n_beats : int
        Number of beats, >= 1.
    y0 : ndarray, shape (n_states,), optional
        Start state (default ``model.default_state()``).
    params : Params, optional
    n_points : int, optional
        Output points per beat on ``linspace(0, period, n_points)``; default the model's
        resolution (``n_points_default`` per ``t_end_default``; ORd at 1000 ms: 10080).
    method, rtol, atol
        As for :func:`ionfno.solvers.simulate`.
    progress : bool
        A tqdm bar over the beats (stderr).
    on_beat : callable, optional
        Called after each beat with its index (0-based) and its :data:`BEAT_FIELDS` values.

    Returns
    -------
    PacingResult

    Raises
    ------
    ValueError
        Non-positive ``period`` or ``n_beats``, or a pulse longer than the beat.
    """
    model = get_model(model)
    if not (np.isfinite(period) and period > 0):
        raise ValueError(f"period must be a finite number > 0, got {period}")
    if isinstance(n_beats, bool) or int(n_beats) != n_beats or n_beats < 1:
        raise ValueError(f"n_beats must be a whole number >= 1, got {n_beats!r}")
    if onset + duration > period:
        raise ValueError(f"the pulse (onset {onset:g} + duration {duration:g} ms) must fit in the period "
                         f"({period:g} ms)")
    if n_points is None:
        n_points = max(3, int(round(model.n_points_default * period / model.t_end_default)))
    y = model.default_state() if y0 is None else np.asarray(y0, dtype=np.float64).copy()
    start = y.copy()
    threshold = firing_threshold(model.name)
    stim = pulse(amplitude, duration, onset)
    iv = model.state_index("V")
    beats = {k: np.full(int(n_beats), np.nan) for k in BEAT_FIELDS}
    end_states = np.full((int(n_beats), model.n_states), np.nan)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=int(n_beats), desc=f"{model.name} pacing", unit="beat")
    traj = None
    try:
        for b in range(int(n_beats)):
            traj = simulate(model, stim, t_end=period, n_points=n_points, y0=y, params=params, method=method,
                            rtol=rtol, atol=atol)
            bm = compute_biomarkers(traj.states[:, iv, :], traj.t, threshold=threshold)
            row = {k: float(v[0]) for k, v in bm.as_dict().items() if k in beats}
            row["status"] = float(traj.status[0])
            row["steps"] = float(traj.stats["steps"][0]) if "steps" in traj.stats else np.nan
            for k, v in row.items():
                beats[k][b] = v
            y = traj.states[0, :, -1].copy()
            end_states[b] = y
            if on_beat is not None:
                on_beat(b, row)
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"APD90 {row['apd90']:.1f} ms", refresh=False)
            if traj.status[0] != 0:
                break  # the state is lost; the remaining beats stay NaN
    finally:
        if bar is not None:
            bar.close()
    beats["status"] = np.where(np.isnan(beats["status"]), -1, beats["status"]).astype(np.int64)  # -1: not run
    beats["steps"] = np.nan_to_num(beats["steps"], nan=0.0).astype(np.int64)
    beats["fires"] = beats["fires"] == 1.0
    return PacingResult(beats=beats, end_states=end_states, last=traj, y0=start)
