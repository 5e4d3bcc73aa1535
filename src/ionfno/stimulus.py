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
* ``integral(t)``: the charge delivered since 0, ``F(t) = int_0^t I_app``, shape ``(B, N)``,
  exact (the FNO's cell-average input is its differences, :mod:`ionfno.data.encoding`).

The protocols: :class:`PulseTrain` (identical pulses at a fixed period), :class:`Pulses` (each
pulse its own amplitude, duration and onset: trains with varying pulses, S1-S2 pairs),
:class:`SampledWaveform` (any current given by samples; :func:`band_limited_noise` draws
smooth random ones) and :class:`Mixed` (samples of different kinds in one batch).

Units are the model's current unit (µA/µF for ORd, µA/cm² for HH, dimensionless for FHN)
and its time unit (ms).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Stimulus", "PulseTrain", "Pulses", "SampledWaveform", "Mixed", "pulse", "band_limited_noise"]


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

    def integral(self, t: np.ndarray) -> np.ndarray:
        """Charge delivered since 0, ``F(t_j) = int_0^{t_j} I_app(s) ds``, exact; shape ``(B, N)``.

        Parameters
        ----------
        t : ndarray, shape (N,)
            Increasing times in ``[0, inf)`` [ms].

        Returns
        -------
        ndarray, shape (B, N), float64
            [current unit x ms]. This generic version integrates the linear pieces of
            :meth:`pieces` (``O(B N K)`` for ``K`` breakpoints); waveforms override it.
        """
        t = np.asarray(t, dtype=np.float64)
        B = self.batch_size
        out = np.zeros((B, t.shape[0]))
        if t.size == 0 or t[-1] <= 0.0:
            return out
        stops, v_start, v_end = self.pieces(float(t[-1]))
        starts = np.concatenate([np.zeros((B, 1)), stops[:, :-1]], axis=1)
        for k in range(stops.shape[1]):
            s, e = starts[:, k], stops[:, k]
            width = e - s
            slope = np.divide(v_end[:, k] - v_start[:, k], width, out=np.zeros(B), where=width > 0)
            # Time spent inside the piece by t_j, and the integral of the linear current over it.
            inside = np.clip(t[None, :], s[:, None], e[:, None]) - s[:, None]
            out += inside * (v_start[:, k, None] + 0.5 * slope[:, None] * inside)
        return out

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

    def to_pulses(self) -> Pulses:
        """The same protocol as :class:`Pulses`, one column per pulse (padded with empty pulses)."""
        K = int(self.n_beats.max())
        k = np.arange(K)[None, :]
        real = k < self.n_beats[:, None]
        onset = self.onset[:, None] + k * np.where(self.n_beats > 1, self.period, 0.0)[:, None]
        return Pulses(
            np.where(real, self.amplitude[:, None], 0.0),
            np.where(real, self.duration[:, None], 0.0),
            np.where(real, onset, 0.0),
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
class Pulses(Stimulus):
    """Rectangular pulses, each with its own amplitude, duration and onset; they add up.

    Pulse ``k`` of sample ``b`` is on for ``onset[b, k] <= t < onset[b, k] + duration[b, k]``
    (closed on the right in :meth:`sample`, the study's convention). Rows are padded with
    *empty* pulses, ``amplitude = duration = 0``, so samples may have different counts. This
    is the protocol of pacing trains whose pulses differ, S1-S2 pairs and shifted pulses.

    Parameters
    ----------
    amplitude : ndarray, shape (B, K)
        Pulse heights [current unit] (finite; positive depolarises).
    duration : ndarray, shape (B, K)
        Pulse lengths [ms], >= 0.
    onset : ndarray, shape (B, K)
        Pulse starts [ms], >= 0.
    """

    amplitude: np.ndarray
    duration: np.ndarray
    onset: np.ndarray

    def __post_init__(self) -> None:
        arrays = [np.asarray(getattr(self, f), dtype=np.float64) for f in ("amplitude", "duration", "onset")]
        arrays = [a[:, None] if a.ndim == 1 else a for a in arrays]
        shape = arrays[0].shape
        if len(shape) != 2 or shape[1] < 1 or any(a.shape != shape for a in arrays):
            raise ValueError(
                "Pulses needs amplitude, duration and onset of one shape (B, K), K >= 1; got "
                + ", ".join(str(a.shape) for a in arrays)
            )
        problems = []
        for name, a in zip(("amplitude", "duration", "onset"), arrays, strict=True):
            if not np.all(np.isfinite(a)):
                problems.append(f"{name} must be finite (got NaN or inf)")
            elif name != "amplitude" and np.any(a < 0):
                problems.append(f"{name} must be >= 0 (got {a.min():g})")
        if problems:
            raise ValueError("Invalid pulses: " + "; ".join(problems))
        for name, a in zip(("amplitude", "duration", "onset"), arrays, strict=True):
            object.__setattr__(self, name, a)

    @property
    def batch_size(self) -> int:
        return self.amplitude.shape[0]

    @property
    def n_pulses(self) -> np.ndarray:
        """Pulses per sample, not counting the empty padding ones; shape ``(B,)``."""
        return np.count_nonzero((self.amplitude != 0) | (self.duration != 0), axis=1)

    def current(self, t, within=None):
        w = np.broadcast_to(np.asarray(t if within is None else within, dtype=np.float64), (self.batch_size,))
        on = (w[:, None] >= self.onset) & (w[:, None] < self.onset + self.duration)
        return np.where(on, self.amplitude, 0.0).sum(axis=1)

    def jump_times(self, t_end: float) -> np.ndarray:
        edges = np.concatenate([self.onset, self.onset + self.duration], axis=1)
        long = np.concatenate([self.duration > 0] * 2, axis=1)
        edges = np.where(long & (edges > 0.0) & (edges < t_end), edges, np.inf)
        edges.sort(axis=1)
        # One edge shared by two pulses (one ends where the next starts) is one breakpoint.
        dup = np.zeros_like(edges, dtype=bool)
        dup[:, 1:] = edges[:, 1:] == edges[:, :-1]
        edges[dup & np.isfinite(edges)] = np.inf
        edges.sort(axis=1)
        keep = max(1, int(np.isfinite(edges).sum(axis=1).max(initial=0)))
        return edges[:, :keep]

    def sample(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)[None, :]
        out = np.zeros((self.batch_size, t.shape[1]))
        for k in range(self.amplitude.shape[1]):
            s = self.onset[:, k, None]
            on = (t >= s) & (t <= s + self.duration[:, k, None])
            out += np.where(on, self.amplitude[:, k, None], 0.0)
        return out

    def integral(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)[None, :]
        out = np.zeros((self.batch_size, t.shape[1]))
        for k in range(self.amplitude.shape[1]):
            d = self.duration[:, k, None]
            out += self.amplitude[:, k, None] * np.clip(t - self.onset[:, k, None], 0.0, d)
        return out

    def select(self, index):
        return Pulses(self.amplitude[index], self.duration[index], self.onset[index])

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "pulses", "amplitude": self.amplitude, "duration": self.duration, "onset": self.onset}


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

    def pieces(self, t_end: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # Vectorised (the generic version calls current() once per knot).
        inner = self.t[(self.t > 0.0) & (self.t < t_end)]
        stops = np.concatenate([inner, [float(t_end)]])
        starts = np.concatenate([[0.0], inner])
        if self.kind == "hold":
            v = self.sample(starts)  # constant on each piece
            v_start = v_end = v
        else:
            v_start, v_end = self.sample(starts), self.sample(stops)
        B = self.batch_size
        return np.broadcast_to(stops, (B, stops.shape[0])).copy(), v_start, v_end.copy()

    def integral(self, t: np.ndarray) -> np.ndarray:
        # Exact and O(B (M + N)): the charge at every knot (trapezoids, or rectangles for
        # "hold"), then the part of the knot interval up to each t (a quadratic for "linear").
        t = np.asarray(t, dtype=np.float64)
        tk, v = self.t, self.values
        h = np.diff(tk)
        piece = 0.5 * (v[:, 1:] + v[:, :-1]) * h if self.kind == "linear" else v[:, :-1] * h
        at_knots = np.concatenate([np.zeros((self.batch_size, 1)), np.cumsum(piece, axis=1)], axis=1)
        # Before t[0] the first value is held, so the charge from 0 to t[0] comes first.
        at_knots += v[:, :1] * tk[0]
        i = np.clip(np.searchsorted(tk, t, side="right") - 1, 0, tk.shape[0] - 2)
        d = t - tk[i]  # (N,); negative before t[0], past the last interval after t[-1]
        base, vi = at_knots[:, i], v[:, i]
        if self.kind == "linear":
            slope = (v[:, i + 1] - vi) / h[i]
            inside = np.clip(d, 0.0, h[i])
            out = base + inside * (vi + 0.5 * slope * inside)
        else:
            out = base + np.clip(d, 0.0, h[i]) * vi
        out = out + np.minimum(d, 0.0) * v[:, :1]  # held first value before t[0]
        return out + np.maximum(d - h[i], 0.0) * v[:, -1:]  # held last value after t[-1]

    def select(self, index):
        return SampledWaveform(self.t, self.values[index], self.kind)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": f"sampled_{self.kind}", "t": self.t, "values": self.values}


@dataclass(frozen=True)
class Mixed(Stimulus):
    """Samples of different protocol classes in one batch (e.g. pulses and waveforms).

    ``members[j]`` gives the samples ``rows[j]`` of the batch; the rows of all members
    partition ``0 .. B-1``. Build with :meth:`of`, which returns a lone member itself.

    Parameters
    ----------
    members : tuple of Stimulus
    rows : tuple of ndarray of int
        Positions in the batch of each member's samples, in the member's order.
    """

    members: tuple[Stimulus, ...]
    rows: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        rows = tuple(np.asarray(r, dtype=np.int64).reshape(-1) for r in self.rows)
        if len(rows) != len(self.members) or not self.members:
            raise ValueError("Mixed needs one row array per member, and at least one member")
        for m, r in zip(self.members, rows, strict=True):
            if m.batch_size != r.shape[0]:
                raise ValueError(f"A member of {m.batch_size} samples was given {r.shape[0]} rows")
        allrows = np.sort(np.concatenate(rows))
        if not np.array_equal(allrows, np.arange(allrows.shape[0])):
            raise ValueError("The rows of a Mixed batch must be 0 .. B-1, each once")
        object.__setattr__(self, "members", tuple(self.members))
        object.__setattr__(self, "rows", rows)

    @classmethod
    def of(cls, members, rows) -> Stimulus:
        """The batch of ``members`` at ``rows`` (the member itself when it is alone and in order)."""
        members, rows = list(members), [np.asarray(r, dtype=np.int64).reshape(-1) for r in rows]
        keep = [j for j, r in enumerate(rows) if r.size]
        members, rows = [members[j] for j in keep], [rows[j] for j in keep]
        if len(members) == 1 and np.array_equal(rows[0], np.arange(rows[0].shape[0])):
            return members[0]
        return cls(tuple(members), tuple(rows))

    @property
    def batch_size(self) -> int:
        return sum(r.shape[0] for r in self.rows)

    def _gather(self, shape_tail: tuple[int, ...], each) -> np.ndarray:
        out = np.zeros((self.batch_size, *shape_tail))
        for m, r in zip(self.members, self.rows, strict=True):
            out[r] = each(m, r)
        return out

    def current(self, t, within=None):
        B = self.batch_size
        t = np.broadcast_to(np.asarray(t, dtype=np.float64), (B,))
        w = t if within is None else np.broadcast_to(np.asarray(within, dtype=np.float64), (B,))
        return self._gather((), lambda m, r: m.current(t[r], w[r]))

    def jump_times(self, t_end: float) -> np.ndarray:
        edges = [m.jump_times(t_end) for m in self.members]
        out = np.full((self.batch_size, max(e.shape[1] for e in edges)), np.inf)
        for e, r in zip(edges, self.rows, strict=True):
            out[r, : e.shape[1]] = e
        return out

    def pieces(self, t_end: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # Each member's own pieces, padded with empty pieces at t_end (never entered).
        parts = [m.pieces(t_end) for m in self.members]
        K = max(p[0].shape[1] for p in parts)
        stops = np.full((self.batch_size, K), float(t_end))
        v_start, v_end = np.zeros_like(stops), np.zeros_like(stops)
        for (s, a, b), r in zip(parts, self.rows, strict=True):
            k = s.shape[1]
            stops[r, :k], v_start[r, :k], v_end[r, :k] = s, a, b
        return stops, v_start, v_end

    def sample(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        return self._gather((t.shape[0],), lambda m, r: m.sample(t))

    def integral(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        return self._gather((t.shape[0],), lambda m, r: m.integral(t))

    def select(self, index):
        chosen = np.arange(self.batch_size)[index]
        member_of = np.empty(self.batch_size, dtype=np.int64)
        local = np.empty(self.batch_size, dtype=np.int64)
        for j, r in enumerate(self.rows):
            member_of[r], local[r] = j, np.arange(r.shape[0])
        members, rows = [], []
        for j, m in enumerate(self.members):
            pos = np.flatnonzero(member_of[chosen] == j)
            if pos.size:
                members.append(m.select(local[chosen[pos]]))
                rows.append(pos)
        return Mixed.of(members, rows)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "mixed", "members": [m.to_dict() for m in self.members], "rows": list(self.rows)}


def band_limited_noise(
    t: np.ndarray,
    *,
    amplitude: np.ndarray,
    offset: np.ndarray,
    cutoff: np.ndarray,
    rngs: list[np.random.Generator],
) -> SampledWaveform:
    """Smooth random currents: band-limited noise of a given peak, as piecewise-linear waveforms.

    Each sample is a random-phase Fourier series with every frequency ``k / P`` up to
    ``cutoff`` (``P = 2 (t[-1] - t[0])``, so the current is not periodic in the window), Gaussian
    coefficients (a flat spectrum), scaled so that its largest deviation on the knots ``t`` is
    exactly ``amplitude``:

    .. math::

        I(t) = I_0 + A \\frac{z(t)}{\\max_j |z(t_j)|}, \\qquad
        z(t) = \\sum_{k=1}^{\\lfloor f_c P \\rfloor} a_k \\cos(2\\pi k t / P + \\varphi_k),
        \\quad a_k \\sim N(0, 1),\\; \\varphi_k \\sim U(0, 2\\pi).

    The knot values are rounded to float32, so a dataset stores them exactly (its ``i_app`` on
    the same grid *is* the waveform), and linear interpolation between knots never exceeds
    ``|I - I_0| <= A``.

    Parameters
    ----------
    t : ndarray, shape (N,)
        Knots [ms]: the waveform is linear between them (give the stored grid or a finer one).
    amplitude, offset : ndarray, shape (B,)
        Largest deviation ``A`` >= 0 and mean level ``I_0`` [current unit].
    cutoff : ndarray, shape (B,)
        Highest frequency ``f_c`` > 0 [1/ms]; at least one mode is kept. Keep it well below the
        knots' Nyquist frequency ``1 / (2 dt)``.
    rngs : list of numpy Generator, length B
        One generator per sample (a sample's current depends on its own generator only).

    Returns
    -------
    SampledWaveform
        ``kind = "linear"``, shape ``(B, N)``.
    """
    t = np.asarray(t, dtype=np.float64)
    amplitude, offset, cutoff = (np.asarray(x, dtype=np.float64).reshape(-1) for x in (amplitude, offset, cutoff))
    B = len(rngs)
    if not (amplitude.shape == offset.shape == cutoff.shape == (B,)):
        raise ValueError("amplitude, offset and cutoff need one value per generator")
    if np.any(amplitude < 0) or np.any(~(cutoff > 0)):
        raise ValueError("band_limited_noise needs amplitude >= 0 and cutoff > 0")
    period = 2.0 * (t[-1] - t[0])
    values = np.empty((B, t.shape[0]))
    for b, rng in enumerate(rngs):
        n = max(1, int(np.floor(cutoff[b] * period)))
        k = np.arange(1, n + 1)
        a, phase = rng.standard_normal(n), rng.uniform(0.0, 2.0 * np.pi, n)
        z = a @ np.cos(2.0 * np.pi * np.outer(k, t - t[0]) / period + phase[:, None])
        peak = np.abs(z).max()
        values[b] = offset[b] + amplitude[b] * (z / peak if peak > 0 else z)
    return SampledWaveform(t, values.astype(np.float32).astype(np.float64), "linear")
