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

Determinism
-----------
Sample ``i`` of a split is a pure function of ``(seed, split, i)`` and the mixture:

* its part is ``labels[i]``, where ``labels`` (the part names repeated by their counts) is
  shuffled by a generator seeded with ``SeedSequence(seed, spawn_key=(split_key, 0))``, so
  parts are interleaved and every block of samples costs about the same to simulate;
* its three uniforms ``u = (u_A, u_T, u_onset)`` come from
  ``SeedSequence(seed, spawn_key=(split_key, 1, i))``. Three are always drawn, so fixing one
  range does not shift the others.

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
from .storage import SPLITS

__all__ = [
    "Part",
    "Mixture",
    "load_mixture",
    "list_mixtures",
    "scale_counts",
    "sample_parameters",
    "part_labels",
    "SPLIT_KEYS",
]

# Stable integer per split for the seed tree (never reorder).
SPLIT_KEYS: dict[str, int] = {"train": 0, "val": 1, "test": 2}

Range = tuple[float | str, float | str]
_PART_KEYS = {"name", "amplitude", "duration", "onset", "counts", "description"}
_MIXTURE_KEYS = {"name", "model", "description", "rationale", "t_end", "n_points", "solver", "parts", "notes"}
_SOLVER_KEYS = {"method", "rtol", "atol", "dt", "max_steps"}


def _as_range(name: str, part: str, v: Any) -> Range:
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
            if not math.isfinite(x) or x < 0:
                raise ValueError(f"Part {part!r}: {name} bounds must be finite and >= 0, got {x}")
            out.append(x)
    if all(isinstance(x, float) for x in out) and out[0] > out[1]:
        raise ValueError(f"Part {part!r}: {name} range [{out[0]}, {out[1]}] has lo > hi")
    return (out[0], out[1])


@dataclass(frozen=True)
class Part:
    """One component of a mixture: uniform ranges and a count per split.

    Parameters
    ----------
    name : str
        Label stored per sample (``"t0"``, ``"general"``, ``"nap"``, ...).
    amplitude : (lo, hi)
        Pulse amplitude range [current unit], uniform; ``lo == hi`` fixes it.
    duration : (lo, hi)
        Pulse duration range [ms]; a bound may be ``"t_end"`` (the window length).
    counts : dict of str to int
        Samples per split at the preset size, keys ``train``, ``val``, ``test``.
    onset : (lo, hi)
        Pulse start range [ms], default 0.
    description : str
        What the part is for.
    """

    name: str
    amplitude: Range
    duration: Range
    counts: dict[str, int]
    onset: Range = (0.0, 0.0)
    description: str = ""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Part:
        unknown = sorted(set(d) - _PART_KEYS)
        if unknown:
            raise ValueError(
                f"Unknown key(s) {unknown} in mixture part; expected some of {sorted(_PART_KEYS)}"
            )
        for k in ("name", "amplitude", "duration", "counts"):
            if k not in d:
                raise ValueError(f"Mixture part {d.get('name', '?')!r} lacks {k!r}")
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
        return cls(
            name=name,
            amplitude=_as_range("amplitude", name, d["amplitude"]),
            duration=_as_range("duration", name, d["duration"]),
            onset=_as_range("onset", name, d.get("onset", 0.0)),
            counts=out,
            description=str(d.get("description", "")),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "amplitude": list(self.amplitude),
            "duration": list(self.duration),
            "onset": list(self.onset),
            "counts": dict(self.counts),
            "description": self.description,
        }

    def bounds(self, what: str, t_end: float) -> tuple[float, float]:
        """Numeric ``(lo, hi)`` of ``amplitude``, ``duration`` or ``onset`` for window ``t_end``."""
        r = getattr(self, what)
        lo, hi = (float(t_end) if x == "t_end" else float(x) for x in r)
        return lo, hi


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
    """Pulse parameters of the samples ``indices`` of ``split``; each a pure function of its index.

    Parameters
    ----------
    mixture : Mixture
    seed : int
        Dataset seed, >= 0.
    split : {"train", "val", "test"}
    n : int, optional
        Samples in the split (scales the composition); default the preset total.
    t_end : float
        Simulation window [ms] (resolves ``"t_end"`` bounds).
    indices : array of int or slice, optional
        Which samples (default all ``n``).

    Returns
    -------
    dict
        ``amplitude``, ``duration``, ``onset`` (m,) float64; ``part`` (m,) str;
        ``part_index`` (m,) int64; ``index`` (m,) int64.
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
    return {
        "amplitude": vals[:, 0],
        "duration": vals[:, 1],
        "onset": vals[:, 2],
        "part": names[pidx] if idx.size else np.array([], dtype=str),
        "part_index": pidx.astype(np.int64),
        "index": idx,
    }


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
