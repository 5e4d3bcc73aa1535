"""Applied-current protocols, batched: one stimulus per sample.

A protocol is an input to the vector field, kept outside the model (as myokit binds
``pace`` to a protocol). Every protocol here answers three questions for a batch of
``B`` samples:

* ``current(t, within)``: the current at times ``t`` (shape ``(B,)``) on the piece of the
  protocol that contains ``within`` (a time strictly inside the integration step). Pulses
  are discontinuous, so the value *at* an edge is ambiguous; integrators step exactly onto
  edges and name the step they are in.
* ``jump_times(t_end)``: the breakpoints in ``(0, t_end)`` per sample, shape ``(B, K)``
  padded with ``+inf``; integrators never step across one.
* ``sample(t)``: the sampled input the FNO sees, shape ``(B, N)``. For pulses this follows
  the reference study: ``I_app(t) = A`` for ``onset <= t <= onset + duration`` (closed), so
  the sampled input has ``I_app(onset) = A`` even for ``duration = 0`` (no current then
  reaches the dynamics).

Units are the model's current unit (µA/µF for ORd, µA/cm² for HH, dimensionless for FHN)
and its time unit (ms).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Stimulus", "PulseTrain", "SampledWaveform", "pulse"]


def _as_batch(name: str, x: Any, batch: int | None = None) -> np.ndarray:
    a = np.atleast_1d(np.asarray(x, dtype=np.float64))
    if a.ndim != 1:
        raise ValueError(f"{name} must be a scalar or a 1-D array, got shape {a.shape}")
    if batch is not None and a.shape[0] not in (1, batch):
        raise ValueError(f"{name} has {a.shape[0]} values for a batch of {batch}")
    if batch is not None and a.shape[0] == 1:
        a = np.repeat(a, batch)
    return a


class Stimulus(ABC):
    """Batched applied-current protocol (see the module docstring)."""

    @property
    @abstractmethod
    def batch_size(self) -> int: ...

    @abstractmethod
    def current(self, t: np.ndarray, within: np.ndarray | None = None) -> np.ndarray:
        """Current at ``t`` on the piece containing ``within`` (default ``t``); shape ``(B,)``."""

    @abstractmethod
    def jump_times(self, t_end: float) -> np.ndarray:
        """Breakpoints strictly inside ``(0, t_end)``, shape ``(B, K)``, padded with ``+inf``."""

    @abstractmethod
    def sample(self, t: np.ndarray) -> np.ndarray:
        """Sampled input on the grid ``t`` (shape ``(N,)``), shape ``(B, N)``."""

    def pieces(self, t_end: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The protocol as linear pieces between its breakpoints, for compiled solvers.

        Every protocol here is linear in time between consecutive breakpoints
        (:meth:`jump_times`): constant for pulses and ``"hold"`` waveforms, linear for
        ``"linear"`` waveforms. Piece ``k`` of a sample runs from ``stops[k-1]`` (0 for
        ``k = 0``) to ``stops[k]``, and its current goes linearly from ``v_start[k]`` to
        ``v_end[k]`` (the values of :meth:`current` at its two ends, taken on the piece).

        Returns
        -------
        stops, v_start, v_end : ndarray, shape (B, K + 1)
            Piece ends (the last is ``t_end``; padding pieces are empty, at ``t_end``) [ms],
            and the current at each piece's start and end [current unit].
        """
        edges = self.jump_times(t_end)
        B = self.batch_size
        stops = np.concatenate([edges, np.full((B, 1), float(t_end))], axis=1)
        stops = np.where(stops < t_end, stops, float(t_end))  # padding (+inf) -> t_end
        starts = np.concatenate([np.zeros((B, 1)), stops[:, :-1]], axis=1)
        mid = 0.5 * (starts + stops)
        v_start = np.empty_like(stops)
        v_end = np.empty_like(stops)
        for k in range(stops.shape[1]):
            v_start[:, k] = self.current(starts[:, k], mid[:, k])
            v_end[:, k] = self.current(stops[:, k], mid[:, k])
        return stops, v_start, v_end

    @abstractmethod
    def select(self, index: np.ndarray | slice) -> Stimulus:
        """The sub-batch ``index`` as a new stimulus."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """Arrays describing the batch (for storage and provenance)."""


@dataclass(frozen=True)
class PulseTrain(Stimulus):
    """Rectangular pulses: ``n_beats`` pulses of ``amplitude`` for ``duration``, every ``period``.

    Pulse ``k`` is on for ``onset + k*period <= t < onset + k*period + duration``.
    All fields are arrays of shape ``(B,)`` (scalars are broadcast by :func:`pulse`).

    Parameters
    ----------
    amplitude : ndarray, shape (B,)
        Pulse height ``A`` [current unit], >= 0 (positive depolarises).
    duration : ndarray, shape (B,)
        Pulse length ``T_stim`` [ms], >= 0 and <= period for trains.
    onset : ndarray, shape (B,)
        Start of the first pulse [ms], >= 0. The reference study uses 0.
    period : ndarray, shape (B,)
        Time between pulse starts [ms]; ignored (may be inf) when ``n_beats == 1``.
    n_beats : ndarray of int, shape (B,)
        Number of pulses, >= 1.
    """

    amplitude: np.ndarray
    duration: np.ndarray
    onset: np.ndarray
    period: np.ndarray
    n_beats: np.ndarray

    def __post_init__(self) -> None:
        B = np.atleast_1d(np.asarray(self.amplitude)).shape[0]
        object.__setattr__(self, "amplitude", _as_batch("amplitude", self.amplitude, B))
        for f in ("duration", "onset", "period"):
            object.__setattr__(self, f, _as_batch(f, getattr(self, f), B))
        nb = np.atleast_1d(np.asarray(self.n_beats))
        if nb.shape[0] == 1:
            nb = np.repeat(nb, B)
        if nb.shape != (B,) or not np.all(np.isfinite(nb.astype(float))) or np.any(nb != np.round(nb)):
            raise ValueError(f"n_beats must be whole numbers, one per sample; got {self.n_beats!r}")
        object.__setattr__(self, "n_beats", nb.astype(np.int64))
        problems = []
        for f in ("amplitude", "duration", "onset"):
            v = getattr(self, f)
            if not np.all(np.isfinite(v)):
                problems.append(f"{f} must be finite (got NaN or inf)")
            elif np.any(v < 0):
                problems.append(f"{f} must be >= 0 (got {v.min():g})")
        if np.any(self.n_beats < 1):
            problems.append("n_beats must be >= 1")
        train = self.n_beats > 1
        if np.any(train & ~(self.period > 0)) or np.any(train & ~np.isfinite(self.period)):
            problems.append("period must be finite and > 0 for more than one beat")
        elif np.any(train & (self.duration > self.period)):
            problems.append("duration must not exceed period")
        if problems:
            raise ValueError("Invalid pulse train: " + "; ".join(problems))

    @property
    def batch_size(self) -> int:
        return self.amplitude.shape[0]

    def _beat(self, t: np.ndarray) -> np.ndarray:
        # Index of the pulse whose window could contain t (0 for single pulses).
        with np.errstate(invalid="ignore", divide="ignore"):
            k = np.floor((t - self.onset) / np.where(self.n_beats > 1, self.period, 1.0))
        return np.clip(np.where(self.n_beats > 1, k, 0.0), 0, self.n_beats - 1)

    def _starts(self, k: np.ndarray) -> np.ndarray:
        return self.onset + np.where(self.n_beats > 1, k * np.where(self.n_beats > 1, self.period, 0.0), 0.0)

    def current(self, t, within=None):
        within = np.broadcast_to(np.asarray(t if within is None else within, dtype=np.float64), (self.batch_size,))
        if self._single:
            # Hot path of the solvers (called every stage): one pulse per sample, no beat index.
            on = (within >= self.onset) & (within < self._end)
        else:
            start = self._starts(self._beat(within))
            on = (within >= start) & (within < start + self.duration)
        return np.where(on, self.amplitude, 0.0)

    @property
    def _single(self) -> bool:
        return bool(self.__dict__.setdefault("_single_cache", bool(np.all(self.n_beats == 1))))

    @property
    def _end(self) -> np.ndarray:
        return self.__dict__.setdefault("_end_cache", self.onset + self.duration)

    def jump_times(self, t_end: float) -> np.ndarray:
        K = int(self.n_beats.max())
        k = np.arange(K)[None, :]
        period = np.where(self.n_beats > 1, self.period, 0.0)[:, None]
        starts = self.onset[:, None] + k * period
        edges = np.concatenate([starts, starts + self.duration[:, None]], axis=1)
        valid = np.concatenate([k < self.n_beats[:, None]] * 2, axis=1)
        valid &= (edges > 0.0) & (edges < t_end) & (self.duration[:, None] > 0.0)
        edges = np.where(valid, edges, np.inf)
        edges.sort(axis=1)
        return edges

    def sample(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)[None, :]
        k = self._beat_grid(t)
        start = self.onset[:, None] + k * np.where(self.n_beats > 1, self.period, 0.0)[:, None]
        on = (t >= start) & (t <= start + self.duration[:, None])
        return np.where(on, self.amplitude[:, None], 0.0)

    def _beat_grid(self, t: np.ndarray) -> np.ndarray:
        per = np.where(self.n_beats > 1, self.period, 1.0)[:, None]
        with np.errstate(invalid="ignore"):
            k = np.floor((t - self.onset[:, None]) / per)
        k = np.where((self.n_beats > 1)[:, None], k, 0.0)
        return np.clip(k, 0, (self.n_beats - 1)[:, None])

    def select(self, index):
        return PulseTrain(
            self.amplitude[index], self.duration[index], self.onset[index],
            self.period[index], self.n_beats[index],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "pulse_train",
            "amplitude": self.amplitude, "duration": self.duration, "onset": self.onset,
            "period": self.period, "n_beats": self.n_beats,
        }


def pulse(amplitude, duration, onset=0.0, *, period=np.inf, n_beats=1) -> PulseTrain:
    """Rectangular pulse(s); scalars or ``(B,)`` arrays, broadcast to one batch.

    ``pulse(80.0, 0.5)`` is ORd's standard stimulus; ``pulse(A, T, period=1000, n_beats=10)``
    paces at 1 Hz.
    """
    arrays = [np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in (amplitude, duration, onset, period)]
    nb = np.atleast_1d(np.asarray(n_beats))
    B = max(a.shape[0] for a in [*arrays, nb])
    return PulseTrain(*(_as_batch(n, a, B) for n, a in zip(("amplitude", "duration", "onset", "period"), arrays)),
                      n_beats=np.repeat(nb, B) if nb.shape[0] == 1 else nb)


@dataclass(frozen=True)
class SampledWaveform(Stimulus):
    """Arbitrary waveform given by samples, one row per sample.

    Parameters
    ----------
    t : ndarray, shape (N,)
        Strictly increasing sample times [ms].
    values : ndarray, shape (B, N)
        Current at those times [current unit].
    kind : {"linear", "hold"}
        ``"linear"`` interpolates (continuous; its kinks at the sample times are breakpoints);
        ``"hold"`` keeps ``values[:, i]`` on ``[t[i], t[i+1])`` (jumps at the sample times).
        Outside ``[t[0], t[-1]]`` the end values are held.
    """

    t: np.ndarray
    values: np.ndarray
    kind: str = "linear"

    def __post_init__(self) -> None:
        t = np.asarray(self.t, dtype=np.float64)
        v = np.asarray(self.values, dtype=np.float64)
        if v.ndim == 1:
            v = v[None, :]
        if t.ndim != 1 or t.shape[0] < 2 or v.shape[-1] != t.shape[0]:
            raise ValueError(f"SampledWaveform needs t (N,), N >= 2, and values (B, N); got {t.shape}, {v.shape}")
        if not np.all(np.diff(t) > 0):
            raise ValueError("SampledWaveform times must be strictly increasing")
        if not np.all(np.isfinite(v)):
            raise ValueError("SampledWaveform values must be finite")
        if self.kind not in ("linear", "hold"):
            raise ValueError(f"Unknown waveform kind {self.kind!r}; expected one of ['hold', 'linear']")
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "values", v)

    @property
    def batch_size(self) -> int:
        return self.values.shape[0]

    def current(self, t, within=None):
        t = np.broadcast_to(np.asarray(t, dtype=np.float64), (self.batch_size,))
        w = t if within is None else np.broadcast_to(np.asarray(within, dtype=np.float64), t.shape)
        i = np.clip(np.searchsorted(self.t, w, side="right") - 1, 0, self.t.shape[0] - 2)
        rows = np.arange(self.batch_size)
        v0, v1 = self.values[rows, i], self.values[rows, i + 1]
        if self.kind == "hold":
            return np.where(w >= self.t[-1], self.values[:, -1], v0)
        s = np.clip((t - self.t[i]) / (self.t[i + 1] - self.t[i]), 0.0, 1.0)
        return v0 + s * (v1 - v0)

    def jump_times(self, t_end: float) -> np.ndarray:
        inner = self.t[(self.t > 0.0) & (self.t < t_end)]
        return np.broadcast_to(inner, (self.batch_size, inner.shape[0])).copy()

    def sample(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        if self.kind == "linear":
            return np.stack([np.interp(t, self.t, row) for row in self.values])
        i = np.clip(np.searchsorted(self.t, t, side="right") - 1, 0, self.t.shape[0] - 1)
        return self.values[:, i]

    def select(self, index):
        return SampledWaveform(self.t, self.values[index], self.kind)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": f"sampled_{self.kind}", "t": self.t, "values": self.values}
