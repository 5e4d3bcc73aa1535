"""Stimulus mixtures as data, and the deterministic draw of each sample's pulse.

A dataset is a mixture of *parts*; each part draws the pulse amplitude ``A``, duration
``T_stim`` and onset uniformly from its own ranges and has a number of samples per split.
Mixtures live in JSON files (``ionfno/presets/mixtures/<model>.json``, or any file given to
``ionfno generate --mixture``)::

    {
      "name": "hh-study", "model": "hh",
      "description": "...", "rationale": "...",
      "t_end": 100.0, "n_points": 5040,
      "solver": {"method": "fast", "rtol": 1e-4},
      "parts": [
        {"name": "t0", "amplitude": [2, 10], "duration": 0,
         "counts": {"train": 20, "val": 10, "test": 10}},
        {"name": "t_fin", "amplitude": [2, 30], "duration": "t_end", ...}
      ]
    }

``t_end``, ``n_points`` and ``solver`` (keys ``method``, ``rtol``, ``atol``, ``dt``,
``max_steps``) are the defaults the mixture was designed and validated with; command-line
options override them. A range is ``[lo, hi]`` (uniform on it) or one number (fixed); the
string ``"t_end"`` stands for the simulation window, so a whole-window part follows
``--t-end``. ``onset`` defaults to 0 (the study's convention: every pulse starts at t = 0).

Kinds of part
-------------
A part's ``kind`` (default ``"pulse"``) says what one sample is; each kind takes its own keys:

=========  ==========================================================================
kind       one sample, and its keys besides ``name``, ``counts``, ``description``
=========  ==========================================================================
pulse      one rectangular pulse: ``amplitude``, ``duration``, ``onset`` (the study's)
train      ``n_pulses`` pulses (a whole number, uniform on ``[lo, hi]``) every ``period``
           from ``onset``; each pulse draws its own ``amplitude`` and ``duration``
s1s2       ``n_pulses`` identical S1 pulses (default 1) every ``period``, then an S2 pulse
           ``coupling`` after the last S1 starts, of ``s2_amplitude`` and ``s2_duration``
           (default: the S1 ranges)
noise      a smooth random current over the whole window (:func:`ionfno.stimulus.band_limited_noise`):
           largest deviation ``amplitude`` around a mean ``offset`` (may be negative,
           default 0), frequencies up to ``cutoff`` [1/time unit]
=========  ==========================================================================

Pulses that would start after the window are dropped. Trains and S1-S2 pairs must not
overlap their own pulses (``duration`` at most ``period``; ``coupling`` at least the S1
duration), which the part checks.

Determinism
-----------
Sample ``i`` of a split is a pure function of ``(seed, split, i)`` and the mixture:

* its part is ``labels[i]``, where ``labels`` (the part names repeated by their counts) is
  shuffled by a generator seeded with ``SeedSequence(seed, spawn_key=(split_key, 0))``, so
  parts are interleaved and every block of samples costs about the same to simulate;
* its three uniforms ``u = (u_A, u_T, u_onset)`` come from
  ``SeedSequence(seed, spawn_key=(split_key, 1, i))``. Three are always drawn, so fixing one
  range does not shift the others. They give a pulse part its pulse, and every other kind
  its first pulse (a noise part: its amplitude);
* the other draws of a train, S1-S2 or noise sample come from
  ``SeedSequence(seed, spawn_key=(split_key, 2, i))`` in a fixed order (for a train, two
  uniforms per possible pulse whatever the count drawn), and a noise sample's waveform from
  ``SeedSequence(seed, spawn_key=(split_key, 3, i))``: the study's kind draws exactly what
  it drew before these kinds existed.

No generator state is shared between samples, so batch size, worker count, block order and
sharding cannot change any sample.

Scaling the counts
------------------
With ``n`` samples requested for a split whose preset total is ``n0``, each part gets
``n * c_p / n0`` rounded by the largest-remainder (Hamilton) method: floors first, then one
more sample to the parts with the largest fractional parts (ties to the earlier part), so the
counts sum to ``n`` exactly and each differs from its exact share by less than one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._io import is_json_path, preset_names, read_preset_json
from ..stimulus import Stimulus
from .storage import SPLITS

__all__ = [
    "PART_KINDS",
    "Part",
    "Mixture",
    "load_mixture",
    "list_mixtures",
    "scale_counts",
    "sample_parameters",
    "part_labels",
    "sample_stimuli",
    "SPLIT_KEYS",
]

# Stable integer per split for the seed tree (never reorder).
SPLIT_KEYS: dict[str, int] = {"train": 0, "val": 1, "test": 2}

Range = tuple[float | str, float | str]
# What one sample of a part is (module docstring), and the keys each kind takes.
PART_KINDS: tuple[str, ...] = ("pulse", "train", "s1s2", "noise")
_COMMON_KEYS = {"name", "kind", "counts", "description", "amplitude"}
_KIND_KEYS: dict[str, set[str]] = {
    "pulse": {"duration", "onset"},
    "train": {"duration", "onset", "n_pulses", "period"},
    "s1s2": {"duration", "onset", "n_pulses", "period", "coupling", "s2_amplitude", "s2_duration"},
    "noise": {"offset", "cutoff"},
}
_REQUIRED: dict[str, tuple[str, ...]] = {
    "pulse": ("duration",),
    "train": ("duration", "n_pulses", "period"),
    "s1s2": ("duration", "coupling"),
    "noise": ("cutoff",),
}
_PART_KEYS = _COMMON_KEYS | set().union(*_KIND_KEYS.values())
_MIXTURE_KEYS = {"name", "model", "description", "rationale", "t_end", "n_points", "solver", "parts", "notes"}
_SOLVER_KEYS = {"method", "rtol", "atol", "dt", "max_steps"}


def _as_range(name: str, part: str, v: Any, *, signed: bool = False) -> Range:
    if isinstance(v, (int, float, str)):
        v = [v, v]
    if not (isinstance(v, (list, tuple)) and len(v) == 2):
        raise ValueError(f"Part {part!r}: {name} must be a number, 't_end' or [lo, hi]; got {v!r}")
    out = []
    for x in v:
        if isinstance(x, str):
            if x != "t_end":
                raise ValueError(f"Part {part!r}: {name} bound {x!r} is not a number or 't_end'")
            out.append(x)
        else:
            x = float(x)
            if not math.isfinite(x) or (x < 0 and not signed):
                raise ValueError(f"Part {part!r}: {name} bounds must be finite and >= 0, got {x}")
            out.append(x)
    if all(isinstance(x, float) for x in out) and out[0] > out[1]:
        raise ValueError(f"Part {part!r}: {name} range [{out[0]}, {out[1]}] has lo > hi")
    return (out[0], out[1])


@dataclass(frozen=True)
class Part:
    """One component of a mixture: its kind, uniform ranges and a count per split.

    Parameters
    ----------
    name : str
        Label stored per sample (``"t0"``, ``"general"``, ``"nap"``, ...).
    amplitude : (lo, hi)
        Pulse amplitude range [current unit], uniform; ``lo == hi`` fixes it. For a noise
        part: the largest deviation from ``offset``.
    duration : (lo, hi)
        Pulse duration range [ms]; a bound may be ``"t_end"`` (the window length). A noise
        part covers the window.
    counts : dict of str to int
        Samples per split at the preset size, keys ``train``, ``val``, ``test``.
    onset : (lo, hi)
        Start of the (first) pulse [ms], default 0.
    description : str
        What the part is for.
    kind : {"pulse", "train", "s1s2", "noise"}
        What one sample is (module docstring).
    n_pulses : (lo, hi) or None
        Pulses of a train, S1 pulses of an S1-S2 pair (whole numbers, uniform; default 1).
    period : (lo, hi) or None
        Time between pulse starts of a train or between S1 pulses [ms].
    coupling : (lo, hi) or None
        S1-S2 interval, from the start of the last S1 to the start of S2 [ms].
    s2_amplitude, s2_duration : (lo, hi) or None
        The S2 pulse (default: ``amplitude``, ``duration``).
    offset : (lo, hi) or None
        Mean current of a noise part [current unit] (may be negative; default 0).
    cutoff : (lo, hi) or None
        Highest frequency of a noise part [1/ms].
    """

    name: str
    amplitude: Range
    duration: Range
    counts: dict[str, int]
    onset: Range = (0.0, 0.0)
    description: str = ""
    kind: str = "pulse"
    n_pulses: Range | None = None
    period: Range | None = None
    coupling: Range | None = None
    s2_amplitude: Range | None = None
    s2_duration: Range | None = None
    offset: Range | None = None
    cutoff: Range | None = None

    def __post_init__(self) -> None:
        if self.kind not in PART_KINDS:
            raise ValueError(f"Part {self.name!r}: unknown kind {self.kind!r}; expected one of {list(PART_KINDS)}")
        if self.kind in ("train", "s1s2"):
            self._check_no_overlap()

    def _check_no_overlap(self) -> None:
        n_lo, n_hi = self.bounds("n_pulses", math.inf)
        if n_lo != math.floor(n_lo) or n_hi != math.floor(n_hi) or n_lo < 1:
            raise ValueError(f"Part {self.name!r}: n_pulses must be whole numbers >= 1, got [{n_lo:g}, {n_hi:g}]")
        d_hi = self.bounds("duration", math.inf)[1]
        if n_hi > 1 or self.kind == "train":
            if self.period is None:
                raise ValueError(f"Part {self.name!r}: more than one pulse needs a period")
            p_lo = self.bounds("period", math.inf)[0]
            if not d_hi <= p_lo:
                raise ValueError(
                    f"Part {self.name!r}: pulses overlap (duration up to {d_hi:g} exceeds the period "
                    f"from {p_lo:g})"
                )
        if self.kind == "s1s2":
            c_lo = self.bounds("coupling", math.inf)[0]
            if not d_hi <= c_lo:
                raise ValueError(
                    f"Part {self.name!r}: S2 starts before S1 ends (coupling from {c_lo:g}, S1 duration "
                    f"up to {d_hi:g})"
                )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Part:
        kind = str(d.get("kind", "pulse"))
        if kind not in PART_KINDS:
            raise ValueError(
                f"Mixture part {d.get('name', '?')!r}: unknown kind {kind!r}; expected one of {list(PART_KINDS)}"
            )
        allowed = _COMMON_KEYS | _KIND_KEYS[kind]
        unknown = sorted(set(d) - allowed)
        if unknown:
            raise ValueError(
                f"Unknown key(s) {unknown} in mixture part of kind {kind!r}; expected some of {sorted(allowed)}"
            )
        for k in ("name", "amplitude", "counts", *_REQUIRED[kind]):
            if k not in d:
                raise ValueError(f"Mixture part {d.get('name', '?')!r} (kind {kind!r}) lacks {k!r}")
        name = str(d["name"])
        counts = dict(d["counts"])
        bad = sorted(set(counts) - set(SPLITS))
        if bad:
            raise ValueError(f"Part {name!r}: unknown split(s) {bad} in counts; expected {list(SPLITS)}")
        out = {}
        for s in SPLITS:
            c = counts.get(s, 0)
            if not (isinstance(c, int) and c >= 0):
                raise ValueError(f"Part {name!r}: count for {s!r} must be a whole number >= 0, got {c!r}")
            out[s] = c
        extra = {
            k: _as_range(k, name, d[k], signed=(k == "offset"))
            for k in ("n_pulses", "period", "coupling", "s2_amplitude", "s2_duration", "offset", "cutoff")
            if k in d
        }
        if kind == "noise":
            if "cutoff" in extra and not extra["cutoff"][0] > 0:
                raise ValueError(f"Part {name!r}: cutoff must be > 0")
            extra.setdefault("offset", (0.0, 0.0))
        return cls(
            name=name,
            amplitude=_as_range("amplitude", name, d["amplitude"]),
            duration=_as_range("duration", name, d["duration"] if kind != "noise" else "t_end"),
            onset=_as_range("onset", name, d.get("onset", 0.0)),
            counts=out,
            description=str(d.get("description", "")),
            kind=kind,
            **extra,
        )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name}
        if self.kind != "pulse":  # the study's kind keeps the layout it always had
            d["kind"] = self.kind
        d["amplitude"] = list(self.amplitude)
        if self.kind != "noise":
            d["duration"] = list(self.duration)
            d["onset"] = list(self.onset)
        for k in ("n_pulses", "period", "coupling", "s2_amplitude", "s2_duration", "offset", "cutoff"):
            v = getattr(self, k)
            if v is not None:
                d[k] = list(v)
        d["counts"] = dict(self.counts)
        d["description"] = self.description
        return d

    def bounds(self, what: str, t_end: float) -> tuple[float, float]:
        """Numeric ``(lo, hi)`` of a range (``amplitude``, ``duration``, ``onset``, ...) for window ``t_end``.

        The S2 ranges default to the S1 ones, ``n_pulses`` to 1 and ``offset`` to 0.
        """
        r = getattr(self, what)
        if r is None:
            r = {"s2_amplitude": self.amplitude, "s2_duration": self.duration, "n_pulses": (1.0, 1.0),
                 "offset": (0.0, 0.0)}.get(what)
            if r is None:
                raise ValueError(f"Part {self.name!r} of kind {self.kind!r} has no {what!r} range")
        lo, hi = (float(t_end) if x == "t_end" else float(x) for x in r)
        return lo, hi

    def max_pulses(self) -> int:
        """Most pulses one sample of this part can hold (0 for noise)."""
        n = int(self.bounds("n_pulses", math.inf)[1])
        return {"pulse": 1, "train": n, "s1s2": n + 1, "noise": 0}[self.kind]


@dataclass(frozen=True)
class Mixture:
    """A named list of parts for one model, with the default grid it was designed for.

    Parameters
    ----------
    name : str
        Mixture name (``"hh-study"``, ``"ord-threshold"``, ...).
    model : str
        Registry name of the model family it was designed for (``"ord"`` also serves
        ``"ord-epi"`` and ``"ord-m"``).
    parts : tuple of Part
    t_end : float or None
        Default window [ms]; None defers to the model's default.
    n_points : int or None
        Default number of grid points; None defers to the model's default.
    solver : dict
        Default solver settings (``method``, ``rtol``, ...); missing keys defer to the solver.
    description, rationale : str
        What it contains and why (shown by ``ionfno inspect``).
    """

    name: str
    model: str
    parts: tuple[Part, ...]
    t_end: float | None = None
    n_points: int | None = None
    description: str = ""
    rationale: str = ""
    solver: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.solver) - _SOLVER_KEYS)
        if unknown:
            raise ValueError(
                f"Unknown solver key(s) {unknown} in mixture {self.name!r}; "
                f"expected some of {sorted(_SOLVER_KEYS)}"
            )
        names = [p.name for p in self.parts]
        if not names:
            raise ValueError(f"Mixture {self.name!r} has no parts")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"Mixture {self.name!r} has duplicated part names {dup}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Mixture:
        unknown = sorted(set(d) - _MIXTURE_KEYS)
        if unknown:
            raise ValueError(f"Unknown key(s) {unknown} in mixture; expected some of {sorted(_MIXTURE_KEYS)}")
        for k in ("name", "model", "parts"):
            if k not in d:
                raise ValueError(f"Mixture lacks {k!r}")
        return cls(
            name=str(d["name"]),
            model=str(d["model"]),
            parts=tuple(Part.from_dict(p) for p in d["parts"]),
            t_end=None if d.get("t_end") is None else float(d["t_end"]),
            n_points=None if d.get("n_points") is None else int(d["n_points"]),
            description=str(d.get("description", "")),
            rationale=str(d.get("rationale", "")),
            solver=dict(d.get("solver") or {}),
            notes=dict(d.get("notes", {})),
        )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "model": self.model,
            "description": self.description,
            "rationale": self.rationale,
            "t_end": self.t_end,
            "n_points": self.n_points,
            "solver": dict(self.solver),
            "parts": [p.to_dict() for p in self.parts],
        }
        if self.notes:
            d["notes"] = self.notes
        return d

    @property
    def part_names(self) -> list[str]:
        return [p.name for p in self.parts]

    def part(self, name: str) -> Part:
        for p in self.parts:
            if p.name == name:
                return p
        raise ValueError(f"Unknown part {name!r} in mixture {self.name!r}; expected one of {self.part_names}")

    @property
    def max_pulses(self) -> int:
        """Most pulses one sample can hold: the width of the per-pulse arrays of a dataset (>= 1)."""
        return max(1, *(p.max_pulses() for p in self.parts))

    @property
    def kinds(self) -> list[str]:
        """The kinds of its parts, without repeats, in part order."""
        return list(dict.fromkeys(p.kind for p in self.parts))

    def default_count(self, split: str) -> int:
        """Preset number of samples in ``split``."""
        return sum(p.counts[split] for p in self.parts)

    def composition(self, split: str, n: int | None = None) -> dict[str, int]:
        """Samples per part in ``split`` for ``n`` samples (default: the preset total)."""
        if split not in SPLITS:
            raise ValueError(f"Unknown split {split!r}; expected one of {list(SPLITS)}")
        base = [p.counts[split] for p in self.parts]
        counts = base if n is None else scale_counts(base, n, what=f"{self.name}/{split}")
        return dict(zip(self.part_names, counts, strict=True))

    def check_model(self, model: str) -> None:
        """Refuse a mixture designed for another model family."""
        if not (model == self.model or model.startswith(self.model + "-")):
            raise ValueError(
                f"Mixture {self.name!r} was designed for model {self.model!r}, not {model!r}; "
                f"pass a mixture file for {model!r} with --mixture"
            )


def scale_counts(counts: Sequence[int], n: int, *, what: str = "mixture") -> list[int]:
    """Scale part counts to total ``n`` by the largest-remainder method (see module docstring)."""
    counts = [int(c) for c in counts]
    total = sum(counts)
    if n < 0:
        raise ValueError(f"Number of samples must be >= 0, got {n}")
    if n == total:
        return counts
    if total == 0:
        if n == 0:
            return counts
        raise ValueError(f"{what}: the preset has no samples in this split, cannot scale to {n}")
    exact = [c * n / total for c in counts]
    out = [math.floor(e) for e in exact]
    rest = n - sum(out)
    order = sorted(range(len(counts)), key=lambda k: (-(exact[k] - out[k]), k))
    for k in order[:rest]:
        out[k] += 1
    return out


def part_labels(composition: Mapping[str, int], *, seed: int, split: str) -> np.ndarray:
    """Part index of every sample of ``split``, shape ``(n,)``: the labels shuffled by the seed."""
    idx = np.repeat(np.arange(len(composition)), list(composition.values()))
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(SPLIT_KEYS[split], 0)))
    return idx[rng.permutation(idx.shape[0])] if idx.size else idx


def sample_parameters(
    mixture: Mixture,
    *,
    seed: int,
    split: str,
    n: int | None = None,
    t_end: float,
    indices: Sequence[int] | np.ndarray | slice | None = None,
) -> dict[str, np.ndarray]:
    """Stimulus parameters of the samples ``indices`` of ``split``; each a pure function of its index.

    Parameters
    ----------
    mixture : Mixture
    seed : int
        Dataset seed, >= 0.
    split : {"train", "val", "test"}
    n : int, optional
        Samples in the split (scales the composition); default the preset total.
    t_end : float
        Simulation window [ms] (resolves ``"t_end"`` bounds; pulses starting later are dropped).
    indices : array of int or slice, optional
        Which samples (default all ``n``).

    Returns
    -------
    dict
        ``amplitude``, ``duration``, ``onset`` (m,) float64: the (first) pulse, or for a noise
        sample its amplitude, the window and 0; ``part`` (m,) str; ``part_index`` (m,) int64;
        ``index`` (m,) int64; ``kind`` (m,) str (the part's); ``protocol`` (m,) str:
        ``"pulses"`` or ``"waveform"`` (noise); ``n_pulses`` (m,) int64 and
        ``pulse_amplitude``, ``pulse_duration``, ``pulse_onset`` (m, K) float64 with ``K =
        mixture.max_pulses``, padded with empty pulses (0, 0, 0); ``noise_offset``,
        ``noise_cutoff`` (m,) float64 (NaN for pulses).
    """
    if split not in SPLIT_KEYS:
        raise ValueError(f"Unknown split {split!r}; expected one of {list(SPLITS)}")
    if int(seed) < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    comp = mixture.composition(split, n)
    n_total = sum(comp.values())
    labels = part_labels(comp, seed=seed, split=split)
    if indices is None:
        idx = np.arange(n_total)
    elif isinstance(indices, slice):
        idx = np.arange(n_total)[indices]
    else:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= n_total):
        raise ValueError(f"Sample indices must lie in [0, {n_total}) for split {split!r}")
    bounds = np.array(
        [[p.bounds(w, t_end) for w in ("amplitude", "duration", "onset")] for p in mixture.parts]
    )  # (n_parts, 3, 2)
    key = SPLIT_KEYS[split]
    u = np.empty((idx.size, 3))
    for j, i in enumerate(idx):
        u[j] = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(key, 1, int(i)))).random(3)
    pidx = labels[idx]
    lo, hi = bounds[pidx, :, 0], bounds[pidx, :, 1]
    vals = np.where(lo == hi, lo, lo + (hi - lo) * u)
    names = np.array(mixture.part_names, dtype=str)
    kinds = np.array([p.kind for p in mixture.parts], dtype=str)
    m, K = idx.size, mixture.max_pulses
    out = {
        "amplitude": vals[:, 0],
        "duration": vals[:, 1],
        "onset": vals[:, 2],
        "part": names[pidx] if m else np.array([], dtype=str),
        "part_index": pidx.astype(np.int64),
        "index": idx,
        "kind": kinds[pidx] if m else np.array([], dtype=str),
        "protocol": np.full(m, "pulses", dtype=object),
        "n_pulses": np.ones(m, dtype=np.int64),
        "pulse_amplitude": np.zeros((m, K)),
        "pulse_duration": np.zeros((m, K)),
        "pulse_onset": np.zeros((m, K)),
        "noise_offset": np.full(m, np.nan),
        "noise_cutoff": np.full(m, np.nan),
    }
    for j in range(m):
        part = mixture.parts[pidx[j]]
        rng = None
        if part.kind != "pulse":
            rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(key, 2, int(idx[j]))))
        _draw_protocol(part, rng, out, j, t_end)
    out["protocol"] = out["protocol"].astype(str)
    return out


def _uniform(part: Part, what: str, t_end: float, u: float) -> float:
    lo, hi = part.bounds(what, t_end)
    return lo if lo == hi else lo + (hi - lo) * u


def _draw_protocol(part: Part, rng: np.random.Generator | None, out: dict[str, np.ndarray], j: int,
                   t_end: float) -> None:
    """Fill row ``j`` of the per-pulse arrays of ``out`` for a sample of ``part`` (module docstring).

    The first pulse is ``out``'s ``amplitude``/``duration``/``onset`` (from the sample's first
    three uniforms); ``rng`` gives the rest in a fixed order.
    """
    a0, d0, t0 = out["amplitude"][j], out["duration"][j], out["onset"][j]
    if part.kind == "noise":
        u_off, u_cut = rng.random(2)
        out["protocol"][j] = "waveform"
        out["n_pulses"][j] = 0
        out["duration"][j], out["onset"][j] = float(t_end), 0.0
        out["noise_offset"][j] = _uniform(part, "offset", t_end, u_off)
        out["noise_cutoff"][j] = _uniform(part, "cutoff", t_end, u_cut)
        return
    amp, dur, ons = [a0], [d0], [t0]
    if part.kind in ("train", "s1s2"):
        n_lo, n_hi = (int(x) for x in part.bounds("n_pulses", t_end))
        u_n, u_period = rng.random(2)
        count = min(n_hi, n_lo + int(u_n * (n_hi - n_lo + 1)))
        period = _uniform(part, "period", t_end, u_period) if part.period is not None else 0.0
        if part.kind == "train":
            # Two uniforms per possible pulse, whatever the count: pulse k's draw never moves.
            extra = rng.random((max(0, n_hi - 1), 2))
            for k in range(1, count):
                amp.append(_uniform(part, "amplitude", t_end, extra[k - 1, 0]))
                dur.append(_uniform(part, "duration", t_end, extra[k - 1, 1]))
                ons.append(t0 + k * period)
        else:
            u_c, u_a2, u_d2 = rng.random(3)
            amp += [a0] * (count - 1)
            dur += [d0] * (count - 1)
            ons += [t0 + k * period for k in range(1, count)]
            amp.append(_uniform(part, "s2_amplitude", t_end, u_a2))
            dur.append(_uniform(part, "s2_duration", t_end, u_d2))
            ons.append(ons[-1] + _uniform(part, "coupling", t_end, u_c))
    keep = [k for k in range(len(ons)) if k == 0 or ons[k] < t_end]  # later pulses never act
    out["n_pulses"][j] = len(keep)
    for c, k in enumerate(keep):
        out["pulse_amplitude"][j, c], out["pulse_duration"][j, c], out["pulse_onset"][j, c] = amp[k], dur[k], ons[k]


def sample_stimuli(
    mixture: Mixture,
    *,
    seed: int,
    split: str,
    t: np.ndarray,
    n: int | None = None,
    t_end: float | None = None,
    indices: Sequence[int] | np.ndarray | slice | None = None,
) -> tuple[dict[str, np.ndarray], Stimulus]:
    """The parameters (:func:`sample_parameters`) and the stimulus batch of samples ``indices``.

    Pulse samples become :class:`~ionfno.stimulus.Pulses` (or the study's single pulses, as
    :func:`~ionfno.stimulus.pulse`, when the mixture has no other kind); noise samples
    become piecewise-linear waveforms with their knots on ``t`` (the stored grid), drawn by
    :func:`~ionfno.stimulus.band_limited_noise` from ``SeedSequence(seed, spawn_key=(split_key,
    3, i))``; a batch with both is a :class:`~ionfno.stimulus.Mixed`.

    Parameters
    ----------
    t : ndarray, shape (N,)
        The grid (knots of the noise waveforms).
    t_end : float, optional
        Window [ms], default ``t[-1]``.
    mixture, seed, split, n, indices
        As :func:`sample_parameters`.
    """
    from ..stimulus import Mixed, Pulses, band_limited_noise, pulse

    t = np.asarray(t, dtype=np.float64)
    t_end = float(t[-1] if t_end is None else t_end)
    p = sample_parameters(mixture, seed=seed, split=split, n=n, t_end=t_end, indices=indices)
    if mixture.kinds == ["pulse"]:  # the study's mixtures: one pulse per sample, as always
        return p, pulse(p["amplitude"], p["duration"], p["onset"])
    wave = np.flatnonzero(p["protocol"] == "waveform")
    pulses = np.flatnonzero(p["protocol"] != "waveform")
    members, rows = [], []
    if pulses.size:
        members.append(Pulses(p["pulse_amplitude"][pulses], p["pulse_duration"][pulses], p["pulse_onset"][pulses]))
        rows.append(pulses)
    if wave.size:
        key = SPLIT_KEYS[split]
        rngs = [
            np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(key, 3, int(p["index"][j]))))
            for j in wave
        ]
        members.append(band_limited_noise(
            t, amplitude=p["amplitude"][wave], offset=p["noise_offset"][wave], cutoff=p["noise_cutoff"][wave],
            rngs=rngs,
        ))
        rows.append(wave)
    return p, Mixed.of(members, rows)


def list_mixtures() -> list[str]:
    """Names of the bundled mixture presets (one per model family)."""
    return preset_names("mixtures")


def load_mixture(source: str | os.PathLike | Mapping[str, Any]) -> Mixture:
    """A mixture from a preset name (``"hh"``), a JSON file path, or a dict.

    Raises
    ------
    ValueError
        Unknown preset (the message lists them), unreadable or invalid JSON, or an invalid mixture.
    """
    if isinstance(source, Mapping):
        return Mixture.from_dict(source)
    s = str(source)
    if not is_json_path(s) and s not in list_mixtures():
        s = s.split("-")[0]  # "hh-long" -> the "hh" family preset
    return Mixture.from_dict(read_preset_json(s, "mixtures", "mixture"))
