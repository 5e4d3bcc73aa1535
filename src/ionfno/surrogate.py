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
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Surrogate", "GridError"]


class GridError(ValueError):
    """The requested time grid is not one this surrogate can be evaluated on."""


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
    """

    def __init__(self, checkpoint: dict[str, Any], device: str = "cpu") -> None:
        import torch

        from .training.config import config_from_dict
        from .training.loop import build_model, normalizer_from_state, resolve_device

        self.device = resolve_device(device)
        self.config = config_from_dict(checkpoint["config"], source="checkpoint config")
        info = checkpoint["data_info"]
        self.info = dict(info)
        self.state_names: list[str] = list(info["state_names"])
        self.units: dict[str, str] = dict(zip(self.state_names, info["state_units"], strict=True))
        self.model_name: str = info["model"]
        self.time_unit: str = info.get("time_unit", "ms")
        self.current_unit: str = info.get("current_unit", "")
        self.t_end = float(info["t_end"])
        # The trained grid: every `subsample`-th point of linspace(0, T, n_points_stored).
        stored = np.linspace(0.0, self.t_end, int(info["n_points_stored"]))
        self.t = stored[:: int(info["subsample"])]
        assert self.t.shape[0] == int(info["n_points"]), "checkpoint grid metadata is inconsistent"
        self.normalization: str = checkpoint["normalizers"]["kind"]
        self.input_encoding: str = self.config.data.input_encoding
        self.epoch = int(checkpoint["epoch"])
        self._in_norm = normalizer_from_state(self.normalization, checkpoint["normalizers"]["input"]).to(
            self.device
        )
        self._out_norm = normalizer_from_state(self.normalization, checkpoint["normalizers"]["output"]).to(
            self.device
        )
        self._model = build_model(self.config, int(info["in_channels"]), len(self.state_names))
        self._model.load_state_dict(checkpoint["model"])
        self._model.to(self.device).eval()
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
        from .pretrained import WEIGHTS_FILE, find_pretrained, list_pretrained
        from .training.checkpoint import load_checkpoint

        p = Path(path)
        if not p.exists() and (named := find_pretrained(str(path))) is not None:
            p = named / WEIGHTS_FILE
        if p.is_dir():
            if which not in ("best", "last"):
                raise ValueError(f"which must be 'best' or 'last', got {which!r}")
            ck_path = p / f"{which}.pt"
            if not ck_path.exists():
                raise FileNotFoundError(
                    f"Run folder {str(p)!r} has no {which}.pt (has training finished an epoch?)"
                )
        elif p.exists():
            ck_path = p
        else:
            raise FileNotFoundError(
                f"No run folder, checkpoint or pretrained surrogate {str(p)!r} "
                f"(pretrained: {list_pretrained()})"
            )
        return cls(load_checkpoint(ck_path, map_location="cpu"), device=device)

    def __repr__(self) -> str:
        return (
            f"Surrogate(model={self.model_name!r}, states={len(self.state_names)}, N={self.t.shape[0]}, "
            f"T={self.t_end:g} {self.time_unit}, normalization={self.normalization!r}, epoch={self.epoch})"
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
                f"This surrogate was trained on the window T = {self.t_end:g} {self.time_unit}; "
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

    def encode(self, stimulus, *, n_points: int | None = None) -> np.ndarray:
        """The input array of a protocol on the grid, shape ``(B, N)``, in this model's encoding.

        Parameters
        ----------
        stimulus : ionfno.stimulus.Stimulus
            Any batched protocol (pulses, trains, sampled waveforms).
        n_points : int, optional
            Grid size (see :meth:`grid`).
        """
        from .data.encoding import encode_current

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

    # ------------------------------------------------------------------ prediction
    def predict_array(self, i_app, *, batch_size: int = 256) -> np.ndarray:
        """States for a batch of sampled currents, shape ``(B, n_states, N)``, physical units.

        Parameters
        ----------
        i_app : array, shape (B, N) or (N,)
            Applied current [current unit] on ``linspace(0, T, N)`` in the model's input
            encoding (:meth:`encode`: point samples, or cell means); ``N`` must be the training
            grid's unless the model uses the per-channel normaliser.
        batch_size : int
            Samples per forward pass (memory only).

        Returns
        -------
        ndarray, float64, shape (B, n_states, N)

        Raises
        ------
        GridError
            ``N`` not allowed (see :meth:`grid`).
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
        t = torch.as_tensor(np.linspace(0.0, self.t_end, n) if n != self.t.shape[0] else self.t)
        outs = []
        with torch.no_grad():
            for start in range(0, a.shape[0], batch_size):
                ib = to_model_dtype(a[start : start + batch_size]).to(self.device)  # (b, N)
                x = build_input(self._in_norm.encode(ib[:, None, :])[:, 0, :], t, self.t_end)
                y = self._out_norm.decode(self._model(x))  # (b, S, N)
                outs.append(y.double().cpu().numpy())
        return np.concatenate(outs, axis=0)

    def predict(self, i_app, *, batch_size: int = 256) -> dict[str, np.ndarray]:
        """States by name for a batch of currents: ``{name: (B, N)}`` in physical units.

        See :meth:`predict_array` for the parameters.
        """
        y = self.predict_array(i_app, batch_size=batch_size)
        return {name: y[:, i, :] for i, name in enumerate(self.state_names)}
