"""Training tensors from a dataset file: dict samples ``{"x": (in_channels, N), "y": (n_states, N)}``.

This is the one place where stored data (float32 or float64) becomes float32 training tensors
(:data:`MODEL_DTYPE`); simulations stay float64 everywhere else.

The FNO input has two channels, as in the reference study:

* ``x[0]``: the applied current, normalised (point-wise in time or per channel);
* ``x[1]``: the grid ``t / T`` in [0, 1] (``T`` the dataset's ``t_end``).

The target ``y`` is every state variable, normalised by the output normaliser, so that the
study's loss (relative L2 in normalised space) is computed directly on model outputs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = [
    "MODEL_DTYPE",
    "SplitData",
    "OperatorDataset",
    "read_split_tensors",
    "build_input",
    "to_model_dtype",
]

# Training and inference dtype of every tensor the FNO sees.
MODEL_DTYPE = torch.float32


def to_model_dtype(a: Any) -> torch.Tensor:
    """Cast an array (any float dtype) to a float32 CPU tensor: the single dtype boundary."""
    return torch.as_tensor(np.asarray(a, dtype=np.float32))


@dataclass
class SplitData:
    """One split of a dataset, subsampled in time, as float32 tensors.

    Attributes
    ----------
    t : Tensor, shape (N,)
        Kept time points [time unit] (float64, it is a grid, not a training tensor).
    i_app : Tensor, shape (n, N)
        Sampled applied current [current unit], float32.
    states : Tensor, shape (n, n_states, N)
        State trajectories in model units, float32.
    part : list of str
        Mixture part of each sample ("t0", "general", ...), for per-part errors.
    t_end : float
        Window length ``T`` [time unit]: the last *stored* time (``t = linspace(0, T, N)``),
        which subsampling may drop.
    """

    t: torch.Tensor
    i_app: torch.Tensor
    states: torch.Tensor
    part: list[str]
    t_end: float

    def __len__(self) -> int:
        return self.i_app.shape[0]


def read_split_tensors(
    path: str | os.PathLike,
    split: str,
    *,
    subsample: int = 1,
    only_ok: bool = True,
    limit: int | None = None,
    input_encoding: str = "point",
    indices: np.ndarray | None = None,
) -> SplitData:
    """Read one split and cast it to float32, keeping every ``subsample``-th time point.

    Parameters
    ----------
    path : path-like
        Dataset file (HDF5, the layout of ``ionfno.data.storage``).
    split : {"train", "val", "test"}
    subsample : int
        Keep time indices ``0, subsample, 2*subsample, ...``.
    only_ok : bool
        Drop samples whose solver status is not ok.
    limit : int, optional
        Keep only the first ``limit`` samples.
    indices : ndarray of int, optional
        Read only these samples (increasing positions in the stored split; instead of
        ``limit``): a block of a split streamed from the file.
    input_encoding : {"point", "cell_average"}
        ``i_app`` as stored (point samples, the study's input) or the mean current over each
        kept point's cell, computed exactly from each sample's stored protocol: its pulses, or
        its waveform's knots (:func:`ionfno.data.encoding.stored_stimulus`).

    Raises
    ------
    ValueError
        If the split is missing, empty after filtering, or ``subsample`` leaves < 2 points.
    """
    from .storage import open_dataset, read_split, split_sizes

    if indices is not None:
        if limit is not None:
            raise ValueError("give limit or indices, not both")
        indices = np.asarray(indices, dtype=np.int64)
    elif limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        indices = np.arange(min(limit, split_sizes(path)[split]))
    from .encoding import encode_current, stored_stimulus

    with open_dataset(path) as f:
        t_all = np.asarray(f["t"][()], dtype=np.float64)  # the grid stays float64
    if subsample < 1 or len(t_all[::subsample]) < 2:
        raise ValueError(f"subsample={subsample} leaves fewer than 2 of the {len(t_all)} stored time points")
    # Strided read: only the kept points are ever in memory.
    arrays = read_split(path, split, dtype=np.float32, only_ok=only_ok, indices=indices, time_stride=subsample)
    if arrays["i_app"].shape[0] == 0:
        raise ValueError(f"Split {split!r} of {str(path)!r} has no usable samples")
    t = t_all[::subsample]
    t_end = float(t_all[-1])
    i_app = arrays["i_app"]
    if input_encoding != "point":
        stim = stored_stimulus(arrays)
        i_app = encode_current(input_encoding, i_app=i_app, stimulus=stim, t=t, t_end=t_end)
    return SplitData(
        t=torch.as_tensor(t),
        i_app=to_model_dtype(i_app),
        states=torch.from_numpy(arrays["states"]),
        part=[str(p) for p in arrays["part"]],
        t_end=t_end,
    )


def build_input(i_app_encoded: torch.Tensor, t: torch.Tensor, t_end: float) -> torch.Tensor:
    """Stack the normalised current and the grid ``t / T`` as the FNO input.

    Parameters
    ----------
    i_app_encoded : Tensor, shape (B, N)
        Normalised applied current.
    t : Tensor, shape (N,)
        Time points [time unit].
    t_end : float
        Window length ``T`` [time unit]; the grid channel is ``t / T``.

    Returns
    -------
    Tensor, shape (B, 2, N), dtype of ``i_app_encoded``.
    """
    grid = (t / t_end).to(dtype=i_app_encoded.dtype, device=i_app_encoded.device)
    grid = grid.expand(i_app_encoded.shape[0], -1)
    return torch.stack([i_app_encoded, grid], dim=1)


class OperatorDataset(torch.utils.data.Dataset):
    """Normalised operator-learning pairs ``{"x": (2, N), "y": (n_states, N)}``.

    The normalisers must already be fitted (on the training split only); encoding happens
    once, here, so a training step is just indexing.

    Parameters
    ----------
    data : SplitData
    t_end : float
        Window length ``T`` of the dataset (for the grid channel ``t / T``).
    input_normalizer, output_normalizer : nn.Module
        Fitted normalisers with ``encode``; input acts on ``(n, 1, N)``, output on
        ``(n, n_states, N)``.
    """

    def __init__(self, data: SplitData, t_end: float, input_normalizer, output_normalizer) -> None:
        with torch.no_grad():
            i_enc = input_normalizer.encode(data.i_app[:, None, :])[:, 0, :]  # (n, N)
            self.x = build_input(i_enc, data.t, t_end).contiguous()  # (n, 2, N)
            self.y = output_normalizer.encode(data.states).contiguous()  # (n, S, N)
        self.part = list(data.part)

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "y": self.y[i]}

    def to(self, device: torch.device | str, non_blocking: bool = False) -> OperatorDataset:
        """Move the whole split to ``device`` (done once when it fits, instead of per batch)."""
        self.x = self.x.to(device, non_blocking=non_blocking)
        self.y = self.y.to(device, non_blocking=non_blocking)
        return self
