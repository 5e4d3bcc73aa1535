"""The network of a run: built from its config, or loaded trained from a checkpoint.

:func:`build_model` is the one place a ``RunConfig`` becomes an ``FNO1d``; :func:`load_trained`
is the one place a checkpoint becomes a model with its normalisers, used by the surrogate,
export, evaluation and the tuner alike (a checkpoint keeps the config, so weights and
hyperparameters travel together, as in equinox's serialisation example).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import RunConfig, config_from_dict

__all__ = [
    "CurrentOnly",
    "Trained",
    "build_model",
    "fit_normalizers",
    "load_trained",
    "normalizer_from_state",
    "resolve_device",
]


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> cuda when available else cpu; ``"cuda"`` without a GPU is an error."""
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch sees no CUDA device; use device cpu or auto")
    if not (name == "cpu" or name.startswith("cuda")):
        raise ValueError(f"Unknown device {name!r}; expected one of ['auto', 'cpu', 'cuda']")
    return torch.device(name)


class CurrentOnly(torch.nn.Module):
    """An FNO that is given the current channel of the ``(B, 2, N)`` input (current, t / T) only.

    The data pipeline and the surrogate always build both channels; a model built with
    ``model.time_channel = False`` drops the grid here, so nothing else depends on the choice.
    ``(B, 2, N) -> (B, S, N)``.
    """

    def __init__(self, fno: torch.nn.Module) -> None:
        super().__init__()
        self.fno = fno

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fno(x[:, :1])


def build_model(cfg: RunConfig, in_channels: int, out_channels: int) -> torch.nn.Module:
    """The FNO1d described by ``cfg.model`` (initialised from the current torch RNG).

    ``in_channels`` counts the grid channel ``t / T``; without ``model.time_channel`` the FNO is
    built for one channel fewer and wrapped in :class:`CurrentOnly`. With ``model.chunk > 0`` it
    is a :class:`~ionfno.fno.ChunkedRollout` (no statistics yet: :func:`calibrate_model`).
    """
    from ..fno import ChunkedRollout, FNO1d

    m = cfg.model

    def fno(n_in: int) -> torch.nn.Module:
        return FNO1d(
            n_modes=m.n_modes,
            in_channels=n_in,
            out_channels=out_channels,
            hidden_channels=m.hidden_channels,
            n_layers=m.n_layers,
            block=m.block,
            activation=m.activation,
            padding=m.padding,  # 0 with model.chunk (RunConfig checks it)
            lifting_channels=m.lifting_channels,
            projection_channels=m.projection_channels,
        )

    if m.chunk > 0:
        # The chunk map sees the current, the states at the chunk's start and the chunk's clock.
        return ChunkedRollout(fno(2 + out_channels), out_channels, m.chunk)
    if m.time_channel:
        return fno(in_channels)
    if in_channels < 2:
        raise ValueError(f"model.time_channel = False drops the grid channel; the input has {in_channels}")
    return CurrentOnly(fno(in_channels - 1))


def calibrate_model(model: torch.nn.Module, out_norm: torch.nn.Module) -> None:
    """Give a :class:`~ionfno.fno.ChunkedRollout` the training statistics it needs (the point-wise
    output normaliser's mean, std and eps); a no-op for every other model."""
    from ..fno import ChunkedRollout

    if isinstance(model, ChunkedRollout):
        model.calibrate(out_norm.mean, out_norm.std, float(out_norm.eps))


def _normalizer_class(kind: str) -> Any:
    from ..data.normalize import NORMALIZERS

    try:
        return NORMALIZERS[kind]
    except KeyError:
        raise ValueError(f"Unknown normalization {kind!r}; expected one of {sorted(NORMALIZERS)}") from None


def fit_normalizers(
    kind: str, data: Any, input_kind: str | None = None
) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Fit the input (current) and output (states) normalisers on training data.

    Parameters
    ----------
    kind : {"pointwise", "channel"}
        The output normaliser (and the input's unless ``input_kind`` is given).
    data : ionfno.data.dataset.SplitData
        The training split.
    input_kind : {"pointwise", "channel", "same"}, optional
        The input normaliser; None or "same" follow ``kind``.

    Returns
    -------
    (input_normalizer, output_normalizer)
        Acting on ``(n, 1, N)`` and ``(n, n_states, N)`` tensors.
    """
    cls = _normalizer_class(kind)
    in_cls = cls if input_kind in (None, "same") else _normalizer_class(input_kind)
    return in_cls.fit(data.i_app[:, None, :]), cls.fit(data.states)


def normalizer_from_state(kind: str, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """Rebuild a fitted normaliser from its ``state_dict`` (as stored in a checkpoint)."""
    return _normalizer_class(kind).from_state_dict(state)


@dataclass
class Trained:
    """A trained FNO with its normalisers and the metadata of its run, ready for inference.

    Attributes
    ----------
    model : nn.Module
        The FNO, in eval mode, on ``device``.
    input_normalizer, output_normalizer : nn.Module
        Fitted normalisers of the current ``(n, 1, N)`` and the states ``(n, n_states, N)``.
    config : RunConfig
    data_info : dict
        What the checkpoint records about the training data (``state_names``, ``t_end``,
        ``n_points_stored``, ``subsample``, ...).
    normalization : {"pointwise", "channel"}
    epoch : int
        Epochs trained when the checkpoint was written.
    n_parameters : int or None
    path : Path or None
        The checkpoint file (None for a checkpoint given as a dict).
    device : torch.device
    """

    model: torch.nn.Module
    input_normalizer: torch.nn.Module
    output_normalizer: torch.nn.Module
    config: RunConfig
    data_info: dict[str, Any]
    normalization: str
    epoch: int
    n_parameters: int | None
    path: Path | None
    device: torch.device

    @property
    def t(self) -> np.ndarray:
        """The training grid: every ``subsample``-th point of ``linspace(0, T, n_points_stored)``."""
        info = self.data_info
        stored = np.linspace(0.0, float(info["t_end"]), int(info["n_points_stored"]))
        return stored[:: int(info["subsample"])]

    @classmethod
    def from_checkpoint(
        cls, ck: dict[str, Any], *, path: str | os.PathLike | None = None, device: str | torch.device = "cpu"
    ) -> Trained:
        """The model of a checkpoint dict (as :func:`~ionfno.training.load_checkpoint` reads it)."""
        dev = resolve_device(device)
        cfg = config_from_dict(
            ck["config"], source=f"checkpoint {str(path)!r}" if path else "checkpoint config"
        )
        info = dict(ck["data_info"])
        kind = ck["normalizers"]["kind"]
        in_kind = ck["normalizers"].get("input_kind", kind)  # older checkpoints: one kind
        model = build_model(cfg, int(info["in_channels"]), len(info["state_names"]))
        model.load_state_dict(ck["model"])
        return cls(
            model=model.to(dev).eval(),
            input_normalizer=normalizer_from_state(in_kind, ck["normalizers"]["input"]).to(dev),
            output_normalizer=normalizer_from_state(kind, ck["normalizers"]["output"]).to(dev),
            config=cfg,
            data_info=info,
            normalization=kind,
            epoch=int(ck["epoch"]),
            n_parameters=ck.get("n_parameters"),
            path=Path(path) if path is not None else None,
            device=dev,
        )


def load_trained(
    source: str | os.PathLike, which: str = "best", device: str | torch.device = "cpu"
) -> Trained:
    """The model of a run folder's ``which`` checkpoint (``"best"``/``"last"``) or of a ``.pt`` file.

    Raises
    ------
    FileNotFoundError
        No such folder or file, or the folder lacks the checkpoint.
    ionfno.training.CheckpointError
        The file is not an ionfno checkpoint.
    """
    from .checkpoint import load_checkpoint
    from .rundir import RunDir

    path = RunDir.resolve(source, which)
    return Trained.from_checkpoint(load_checkpoint(path, map_location="cpu"), path=path, device=device)
