"""Applied-current waveforms from files: CSV (columns ``t``, ``i_app``) or ``.npz`` (arrays ``t``, ``i_app``).

>>> wf = read_waveform("stim.csv")                 # doctest: +SKIP
>>> check_window(wf, t_end=1000.0)                 # doctest: +SKIP
>>> x = sur.encode(wf)                             # the surrogate's input on its grid   # doctest: +SKIP

A file holds one current ``I_app(t)`` sampled at strictly increasing times [ms] in the
model's current unit. It becomes a :class:`~ionfno.stimulus.SampledWaveform` (``"linear"``
between samples by default, or ``"hold"``: piecewise constant), a protocol like any other:
the solver integrates it exactly piece by piece, and :meth:`ionfno.surrogate.Surrogate.encode`
resamples it to the model's grid in the model's input encoding (point samples or cell means).
Neither extrapolates: the samples must cover the whole window ``[0, T]``
(:func:`check_window`).
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
from pathlib import Path

import numpy as np

from .stimulus import SampledWaveform

__all__ = ["WaveformError", "read_waveform", "check_window"]


class WaveformError(ValueError):
    """A waveform file that cannot be read, or that does not cover the window."""


def _from_csv(text: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [
        r for r in csv.reader(line for line in io.StringIO(text) if line.strip() and not line.startswith("#"))
    ]
    if not rows:
        raise WaveformError(f"Waveform {name!r} is empty")
    header = [h.strip().lower() for h in rows[0]]
    if "t" not in header or "i_app" not in header:
        raise WaveformError(
            f"CSV waveform {name!r} needs a header with columns 't' and 'i_app'; found {rows[0]}"
        )
    it, ii = header.index("t"), header.index("i_app")
    t, i = [], []
    for k, r in enumerate(rows[1:], start=2):
        try:
            t.append(float(r[it]))
            i.append(float(r[ii]))
        except (ValueError, IndexError):
            raise WaveformError(
                f"CSV waveform {name!r}, data row {k}: expected numbers in columns t and i_app, got {r}"
            ) from None
    return np.asarray(t), np.asarray(i)


def _from_npz(data: bytes | Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(io.BytesIO(data) if isinstance(data, bytes) else data, allow_pickle=False) as f:
            missing = [k for k in ("t", "i_app") if k not in f.files]
            if missing:
                raise WaveformError(
                    f".npz waveform {name!r} needs arrays 't' and 'i_app'; it has {sorted(f.files)}"
                )
            return np.asarray(f["t"], dtype=np.float64), np.asarray(f["i_app"], dtype=np.float64)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        if isinstance(e, WaveformError):
            raise
        raise WaveformError(f"Cannot read .npz waveform {name!r}: {e}") from None


def read_waveform(
    source: str | os.PathLike | bytes, *, kind: str = "linear", name: str | None = None
) -> SampledWaveform:
    """One applied current from a CSV or ``.npz`` file (or its bytes), as a protocol.

    Parameters
    ----------
    source : path or bytes
        A ``.csv`` file with a header naming columns ``t`` and ``i_app`` (others ignored,
        ``#`` lines skipped), or an ``.npz`` file with 1-D arrays ``t`` and ``i_app``; bytes
        are read as ``.npz`` when they are a zip archive, else as CSV text.
    kind : {"linear", "hold"}
        Between samples: linear interpolation, or the previous sample held.
    name : str, optional
        Shown in messages (default: the path).

    Returns
    -------
    SampledWaveform
        One sample (batch of 1).

    Raises
    ------
    WaveformError
        Unreadable file, missing columns, fewer than 2 samples, times not strictly
        increasing, or non-finite values.
    """
    if isinstance(source, bytes):
        label = name or "<upload>"
        t, i = (
            _from_npz(source, label) if source[:2] == b"PK" else _from_csv(source.decode("utf-8-sig"), label)
        )
    else:
        path = Path(source)
        label = name or str(path)
        if not path.is_file():
            raise WaveformError(f"No waveform file {label!r}")
        if path.suffix.lower() == ".npz":
            t, i = _from_npz(path, label)
        elif path.suffix.lower() in (".csv", ".txt"):
            t, i = _from_csv(path.read_text(encoding="utf-8-sig"), label)
        else:
            raise WaveformError(f"Waveform {label!r}: expected a .csv or .npz file")
    if t.ndim != 1 or i.ndim != 1 or t.shape != i.shape:
        raise WaveformError(
            f"Waveform {label!r}: t and i_app must be 1-D of the same length, got {t.shape}, {i.shape}"
        )
    if t.shape[0] < 2:
        raise WaveformError(f"Waveform {label!r} has {t.shape[0]} sample(s); at least 2 are needed")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(i))):
        raise WaveformError(f"Waveform {label!r} contains NaN or inf")
    if not np.all(np.diff(t) > 0):
        k = int(np.argmax(np.diff(t) <= 0))
        raise WaveformError(
            f"Waveform {label!r}: times must be strictly increasing (t[{k}] = {t[k]:g}, "
            f"t[{k + 1}] = {t[k + 1]:g})"
        )
    try:
        return SampledWaveform(t, i[None, :], kind)
    except ValueError as e:
        raise WaveformError(f"Waveform {label!r}: {e}") from None


def check_window(waveform: SampledWaveform, t_end: float, *, time_unit: str = "ms") -> None:
    """Refuse a waveform whose samples do not cover ``[0, t_end]`` (no extrapolation).

    Raises
    ------
    WaveformError
        Naming the covered interval and the window needed.
    """
    tol = 1e-9 * max(abs(t_end), 1.0)
    lo, hi = float(waveform.t[0]), float(waveform.t[-1])
    if lo > tol or hi < t_end - tol:
        raise WaveformError(
            f"The waveform covers [{lo:g}, {hi:g}] {time_unit}; the surrogate predicts on the window "
            f"[0, {t_end:g}] {time_unit}, which the samples must cover (from t <= 0 to t >= {t_end:g})"
        )
