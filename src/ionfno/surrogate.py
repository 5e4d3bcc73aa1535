"""A trained FNO as a drop-in simulator: applied current in, named states in physical units out.

>>> sur = Surrogate.load("runs/fhn")                       # doctest: +SKIP
>>> i_app = sur.pulse_input(amplitude=[0.5, 1.0], duration=[5.0, 20.0])   # (2, N) on sur.t
>>> out = sur.predict(i_app)                                # {"V": (2, N), "w": (2, N)}
>>> out = sur.predict(sur.encode(ionfno.pulse(1.0, 5.0)))    # doctest: +SKIP

The surrogate evaluates the learned operator ``G: I_app(.) -> (states)(.)`` on the grid
``t = linspace(0, T, N)`` of its training data (``T`` the window, ``N`` the trained points).
A model trained with the point-wise normaliser (the study's) only knows that grid; a model
trained with the per-channel normaliser may be evaluated on any number of points over the
same window (Fourier layers are resolution-independent), e.g. ``sur.grid(n_points=5040)``.
The window ``T`` itself cannot change: the FNO sees time only through ``t / T``.

The input array is the current in the model's *input encoding* (``sur.input_encoding``, see
:mod:`ionfno.data.encoding`): point samples ``I_app(t_i)`` (the study's) or the mean current
over each grid point's cell. :meth:`encode` turns any protocol into the right one, and
:meth:`pulse_input` does it for rectangular pulses.

Outside its training data a surrogate extrapolates, and nothing in the network says so: an
amplitude of 1e30 gives numbers, not an error. Inputs are therefore checked against the range
the model was trained on (:attr:`Surrogate.training_range`: amplitude, duration, onset and
number of pulses): outside it, :class:`ExtrapolationWarning` names the trained range, or, with
``strict=True`` (``sur.strict = True``, ``ionfno predict --strict``), :class:`ExtrapolationError`
is raised instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ._text import quantity

__all__ = ["Surrogate", "GridError", "ExtrapolationWarning", "ExtrapolationError"]


class GridError(ValueError):
    """The requested time grid is not one this surrogate can be evaluated on."""


class ExtrapolationWarning(UserWarning):
    """An input lies outside the range the surrogate was trained on (the message names it)."""


class ExtrapolationError(ValueError):
    """As :class:`ExtrapolationWarning`, raised in strict mode (or the trained range is unknown)."""


class Surrogate:
    """A trained FNO with its normalisers, ready to predict (see the module docstring).

    Build with :meth:`load` (a run folder or a checkpoint file). Attributes:

    Attributes
    ----------
    state_names : list of str
        Output variables, model order.
    units : dict of str to str
        Unit of each state.
    model_name : str
        Ionic model the data came from ("fhn", "hh", "ord", ...).
    t : ndarray, shape (N,)
        Training grid [time unit].
    t_end : float
        Window length ``T`` [time unit].
    normalization : {"pointwise", "channel"}
    input_encoding : {"point", "cell_average"}
        What the input array holds (module docstring).
    config : RunConfig
    strict : bool
        Inputs outside :attr:`training_range` raise :class:`ExtrapolationError` instead of
        warning (default False; each call may override it).
    source : Path or None
        The checkpoint file it was loaded from (by :meth:`load`).
    """

    strict: bool = False
    source: Path | None = None

    def __init__(self, checkpoint: dict[str, Any], device: str = "cpu") -> None:
        import torch

        from .training.model import Trained

        trained = Trained.from_checkpoint(checkpoint, device=device)
        self.trained = trained
        self.device = trained.device
        self.config = trained.config
        info = trained.data_info
        self.info = info
        self.state_names: list[str] = list(info["state_names"])
        self.units: dict[str, str] = dict(zip(self.state_names, info["state_units"], strict=True))
        self.model_name: str = info["model"]
        self.time_unit: str = info.get("time_unit", "ms")
        self.current_unit: str = info.get("current_unit", "")
        self.t_end = float(info["t_end"])
        self.t = trained.t  # the trained grid: every `subsample`-th stored point
        assert self.t.shape[0] == int(info["n_points"]), "checkpoint grid metadata is inconsistent"
        self.normalization: str = trained.normalization
        self.input_encoding: str = self.config.data.input_encoding
        self.epoch = trained.epoch
        self._in_norm, self._out_norm = trained.input_normalizer, trained.output_normalizer
        self._model = trained.model
        self._torch = torch

    # ------------------------------------------------------------------ construction
    @classmethod
    def load(cls, path: str | os.PathLike, *, which: str = "best", device: str = "cpu") -> Surrogate:
        """Load from a run folder (``which`` = "best" or "last" checkpoint), a ``.pt`` file, or a name.

        A name that is not an existing file or folder is looked up among the pretrained
        surrogates (:mod:`ionfno.pretrained`: ``Surrogate.load("ord")``).

        Raises
        ------
        FileNotFoundError
            No such folder/file/pretrained name, or the folder has no ``{which}.pt``.
        ionfno.training.CheckpointError
            The file is not an ionfno checkpoint.
        """
        from .pretrained import resolve_source
        from .training import RunDir
        from .training.checkpoint import load_checkpoint

        ck_path = RunDir.resolve(resolve_source(path), which)
        sur = cls(load_checkpoint(ck_path, map_location="cpu"), device=device)
        sur.source = Path(ck_path)  # a pretrained card beside it records the trained range
        return sur

    def __repr__(self) -> str:
        return (
            f"Surrogate(model={self.model_name!r}, states={len(self.state_names)}, N={self.t.shape[0]}, "
            f"T={quantity(self.t_end, self.time_unit)}, normalization={self.normalization!r}, "
            f"epoch={self.epoch})"
        )

    # ------------------------------------------------------------------ grids and inputs
    def grid(self, t_end: float | None = None, n_points: int | None = None) -> np.ndarray:
        """A grid this surrogate can evaluate on: ``linspace(0, T, n_points)``.

        Parameters
        ----------
        t_end : float, optional
            Must equal the training window ``T`` (checked, relative tolerance 1e-9).
        n_points : int, optional
            Defaults to the training grid. Another value needs the "channel" normaliser.

        Raises
        ------
        GridError
            Another window, or another resolution with the point-wise normaliser.
        """
        if t_end is not None and not np.isclose(t_end, self.t_end, rtol=1e-9, atol=0.0):
            raise GridError(
                f"This surrogate was trained on the window T = {quantity(self.t_end, self.time_unit)}; "
                f"it cannot predict on T = {t_end:g} (the FNO sees time only as t/T)"
            )
        if n_points is None or n_points == self.t.shape[0]:
            return self.t.copy()
        self._check_resolution(int(n_points))
        return np.linspace(0.0, self.t_end, int(n_points))

    def _check_resolution(self, n: int) -> None:
        n_train = self.t.shape[0]
        if n == n_train:
            return
        if self.normalization == "pointwise":
            raise GridError(
                f"This surrogate uses the point-wise normaliser, fitted on its training grid of {n_train} "
                f"points; it cannot predict on {n} points. Use n_points={n_train}, or train with "
                "data.normalization=channel for a grid-free model."
            )
        if n < 2:
            raise GridError(f"A grid needs at least 2 points, got {n}")
        from .fno import check_n_modes

        try:
            check_n_modes(self.config.model.n_modes, n + self.config.model.padding)
        except ValueError as e:
            raise GridError(str(e)) from None

    def encode(self, stimulus, *, n_points: int | None = None, strict: bool | None = None) -> np.ndarray:
        """The input array of a protocol on the grid, shape ``(B, N)``, in this model's encoding.

        Parameters
        ----------
        stimulus : ionfno.stimulus.Stimulus
            Any batched protocol (pulses, trains, sampled waveforms).
        n_points : int, optional
            Grid size (see :meth:`grid`).
        strict : bool, optional
            Pulse durations, onsets and counts outside :attr:`training_range` raise instead of
            warning (default :attr:`strict`); amplitudes are checked by :meth:`predict_array`.

        Raises
        ------
        ExtrapolationError
            In strict mode, a pulse outside the trained range.
        """
        from .data.encoding import encode_current
        from .stimulus import PulseTrain

        if isinstance(stimulus, PulseTrain):
            self.check_range(
                {
                    "duration": stimulus.duration,
                    "onset": stimulus.onset,
                    "n_pulses": stimulus.n_beats,
                },
                strict=strict,
            )
        t = self.grid(n_points=n_points)
        return encode_current(self.input_encoding, i_app=stimulus.sample(t), stimulus=stimulus, t=t,
                              t_end=self.t_end)

    def pulse_input(self, amplitude, duration, onset=0.0, *, n_points: int | None = None) -> np.ndarray:
        """Rectangular-pulse currents as this model's input, shape ``(B, N)`` (see :meth:`encode`).

        Parameters
        ----------
        amplitude : float or array (B,)
            Pulse height [current unit].
        duration : float or array (B,)
            Pulse length ``T_stim`` [time unit].
        onset : float or array (B,)
            Pulse start [time unit]; the study's data all start at 0 (other onsets are out
            of the training distribution).
        n_points : int, optional
            Grid size (see :meth:`grid`).
        """
        from .stimulus import pulse

        return self.encode(pulse(amplitude, duration, onset), n_points=n_points)

    def output_statistics(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Point-wise mean and std of the training outputs on the trained grid, each ``(n_states, N)``.

        The normaliser of the study's metric (:func:`ionfno.evaluation.metrics.compute_errors`);
        None for a model trained with the per-channel normaliser, which does not keep them.
        """
        if self.normalization != "pointwise":
            return None
        return (self._out_norm.mean.double().cpu().numpy(), self._out_norm.std.double().cpu().numpy())

    # ------------------------------------------------------------------ trained range
    @property
    def training_range(self) -> dict[str, Any] | None:
        """What the model was trained on: ``amplitude``, ``duration``, ``onset`` and ``n_pulses``
        as ``[min, max]`` (current and time units), and ``source``, where the range was read.

        Looked up, in order, in the checkpoint's ``data_info["trained_range"]``, the model card
        of a pretrained surrogate (``card.json`` beside its weights), and the training split
        of the dataset named in ``data_info["dataset"]`` (its first ``data.n_train`` usable
        samples, as training read them) when that file is still there and of the same model
        and grid. None when none of them is available.
        """
        if "_training_range" not in self.__dict__:
            self.__dict__["_training_range"] = _find_training_range(self)
        return self.__dict__["_training_range"]

    def check_range(self, values: dict[str, Any], *, strict: bool | None = None) -> None:
        """Warn (or, strict, raise) if ``values`` leave :attr:`training_range`.

        Parameters
        ----------
        values : dict of str to array
            Any of ``amplitude``, ``duration``, ``onset``, ``n_pulses``, and ``current`` (an
            input array, checked against ``[min(0, amplitude min), amplitude max]``).
        strict : bool, optional
            Default :attr:`strict`.

        Raises
        ------
        ExtrapolationError
            Strict, and a value outside the range, or the range is unknown.
        """
        import warnings

        strict = self.strict if strict is None else strict
        rng = self.training_range
        if rng is None:
            if strict:
                raise ExtrapolationError(
                    "The range this surrogate was trained on is unknown (its checkpoint does not record "
                    f"it and its dataset {str(self.info.get('dataset', ''))!r} is not found), so strict "
                    "checking cannot be done"
                )
            return
        problems = _out_of_range(values, rng, self.current_unit, self.time_unit)
        if not problems:
            return
        trained = ", ".join(
            f"{k} {_span(rng[k], _UNIT_OF[k], self.current_unit, self.time_unit)}" for k in _RANGE_KEYS
        )
        msg = (
            f"Input outside the range this surrogate was trained on: {'; '.join(problems)}. Trained on "
            f"{trained} (from {rng.get('source', '?')}); the prediction is an extrapolation"
        )
        if strict:
            raise ExtrapolationError(msg)
        warnings.warn(msg, ExtrapolationWarning, stacklevel=3)

    # ------------------------------------------------------------------ prediction
    def predict_array(self, i_app, *, batch_size: int = 256, strict: bool | None = None) -> np.ndarray:
        """States for a batch of sampled currents, shape ``(B, n_states, N)``, physical units.

        Parameters
        ----------
        i_app : array, shape (B, N) or (N,)
            Applied current [current unit] on ``linspace(0, T, N)`` in the model's input
            encoding (:meth:`encode`: point samples, or cell means); ``N`` must be the training
            grid's unless the model uses the per-channel normaliser.
        batch_size : int
            Samples per forward pass (memory only).
        strict : bool, optional
            A current outside the trained amplitudes raises :class:`ExtrapolationError`
            instead of warning (default :attr:`strict`).

        Returns
        -------
        ndarray, float64, shape (B, n_states, N)

        Raises
        ------
        GridError
            ``N`` not allowed (see :meth:`grid`).
        ExtrapolationError
            In strict mode, a current outside the trained range.
        ValueError
            Non-finite input, or wrong number of dimensions.
        """
        torch = self._torch
        from .data.dataset import build_input, to_model_dtype

        a = np.asarray(i_app, dtype=np.float64)
        if a.ndim == 1:
            a = a[None, :]
        if a.ndim != 2:
            raise ValueError(f"i_app must have shape (batch, n_points) or (n_points,), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError("i_app contains NaN or inf")
        n = a.shape[1]
        self._check_resolution(n)
        # The current takes 0 and the pulse amplitudes (or cell means between them).
        self.check_range({"current": a}, strict=strict)
        t = torch.as_tensor(np.linspace(0.0, self.t_end, n) if n != self.t.shape[0] else self.t)
        outs = []
        with torch.no_grad():
            for start in range(0, a.shape[0], batch_size):
                ib = to_model_dtype(a[start : start + batch_size]).to(self.device)  # (b, N)
                x = build_input(self._in_norm.encode(ib[:, None, :])[:, 0, :], t, self.t_end)
                y = self._out_norm.decode(self._model(x))  # (b, S, N)
                outs.append(y.double().cpu().numpy())
        return np.concatenate(outs, axis=0)

    def predict(self, i_app, *, batch_size: int = 256, strict: bool | None = None) -> dict[str, np.ndarray]:
        """States by name for a batch of currents: ``{name: (B, N)}`` in physical units.

        See :meth:`predict_array` for the parameters.
        """
        y = self.predict_array(i_app, batch_size=batch_size, strict=strict)
        return {name: y[:, i, :] for i, name in enumerate(self.state_names)}


# ---------------------------------------------------------------------- trained range
_RANGE_KEYS = ("amplitude", "duration", "onset", "n_pulses")
_UNIT_OF = {"amplitude": "current", "current": "current", "duration": "time", "onset": "time", "n_pulses": ""}
_LABEL = {"current": "applied current"}


def _find_training_range(sur: Surrogate) -> dict[str, Any] | None:
    """See :attr:`Surrogate.training_range`."""
    import json

    info = sur.info
    recorded = info.get("trained_range")
    if recorded:
        return dict(recorded) | {"source": "the checkpoint"}
    if sur.source is not None:
        from .pretrained import CARD_FILE

        card = Path(sur.source).parent / CARD_FILE
        if card.is_file():
            try:
                rng = (json.loads(card.read_text()).get("input") or {}).get("trained_range")
            except (OSError, ValueError):
                rng = None
            if rng:
                return dict(rng) | {"source": str(card)}
    dataset = _find_dataset(str(info.get("dataset", "")), sur.source)
    if dataset is None:
        return None
    from .data.storage import DatasetError, dataset_info
    from .pretrained.build import trained_input_range

    try:
        di = dataset_info(dataset)
        if str(di.get("model")) != info["model"] or int(di["n_points"]) != int(info["n_points_stored"]):
            return None  # another dataset now has that name
        rng = trained_input_range(dataset, n_train=sur.config.data.n_train, only_ok=sur.config.data.only_ok)
    except (DatasetError, ValueError, KeyError, OSError):
        return None
    return dict(rng["trained_range"]) | {"source": str(dataset)}


def _find_dataset(recorded: str, source: Path | None) -> Path | None:
    """The dataset file named at training time: as recorded, else relative to the run folder."""
    if not recorded:
        return None
    p = Path(recorded)
    candidates = [p]
    if not p.is_absolute() and source is not None:
        run = Path(source).resolve().parent
        candidates += [run / p, run.parent / p, run.parent.parent / p]
    return next((c for c in candidates if c.is_file()), None)


def _span(lohi: Any, kind: str, current_unit: str, time_unit: str) -> str:
    unit = {"current": current_unit, "time": time_unit}.get(kind, "")
    lo, hi = (float(x) for x in lohi)
    return quantity(lo, unit) if lo == hi else f"[{lo:g}, {quantity(hi, unit)}]"


def _out_of_range(
    values: dict[str, Any], rng: dict[str, Any], current_unit: str, time_unit: str
) -> list[str]:
    """One phrase per quantity of ``values`` outside ``rng`` (with a margin of 2 % of the span)."""
    problems = []
    for key, v in values.items():
        a = np.asarray(v, dtype=np.float64)
        if a.size == 0:
            continue
        if key == "current":
            amp = rng.get("current", rng.get("amplitude"))  # "current": with smooth random currents
            if amp is None:
                continue
            lo, hi = min(0.0, float(amp[0])), float(amp[1])  # the current is 0 outside the pulses
        elif key in rng:
            lo, hi = (float(x) for x in rng[key])
        else:
            continue
        slack = 0.02 * (hi - lo) + 1e-9 * max(abs(lo), abs(hi), 1.0)
        below, above = float(a.min()) < lo - slack, float(a.max()) > hi + slack
        if below or above:
            got = float(a.max()) if above else float(a.min())
            kind = _UNIT_OF[key]
            problems.append(
                f"{_LABEL.get(key, key.replace('_', ' '))} {'up to' if above else 'down to'} "
                f"{_span([got, got], kind, current_unit, time_unit)} (trained "
                f"{_span([lo, hi], kind, current_unit, time_unit)})"
            )
    return problems
