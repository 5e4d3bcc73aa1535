"""The data of a run: the splits read once, normalised, and the curriculum's coarse grid.

:func:`prepare` reads the training, validation and test splits of a dataset file on the
run's grid (``data.subsample``, ``data.input_encoding``), fits the normalisers on the training
samples actually used, and encodes every split once, so that a step is only indexing. The
result, :class:`Prepared`, is what every rank trains on: read by each rank under torchrun, or
read by rank 0 and shared with the ranks it starts.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..data.dataset import OperatorDataset, SplitData, read_split_tensors
from .config import RunConfig
from .model import fit_normalizers

__all__ = ["Prepared", "prepare", "check_grid", "part_sampling_weights"]


@dataclass
class Prepared:
    """Normalised splits and what a checkpoint records about them.

    Attributes
    ----------
    train : OperatorDataset or StreamedSplit
        ``x`` of shape ``(n, 2, N)``, ``y`` of shape ``(n, n_states, N)``; or the same read
        from the file every epoch (:mod:`~ionfno.training.streaming`).
    val : OperatorDataset
    test : OperatorDataset or None
        None when the file has no usable test sample.
    coarse_x, coarse_y : Tensor or None
        Every ``train.coarse_factor``-th point of the training pairs (curriculum), contiguous.
    input_normalizer, output_normalizer : nn.Module
        Fitted on the training split.
    data_info : dict
        The checkpoint's ``data_info`` (model, state names and units, grid, source file).
    sample_weights : Tensor or None
        Shape ``(n_train,)``: each training sample's relative draw weight
        (``train.part_weights``, :func:`part_sampling_weights`); None draws every sample once
        per epoch.
    """

    train: Any  # OperatorDataset or StreamedSplit
    val: OperatorDataset
    test: OperatorDataset | None
    coarse_x: torch.Tensor | None
    coarse_y: torch.Tensor | None
    input_normalizer: torch.nn.Module
    output_normalizer: torch.nn.Module
    data_info: dict[str, Any]
    sample_weights: torch.Tensor | None = None

    @property
    def state_names(self) -> list[str]:
        return list(self.data_info["state_names"])

    @property
    def n_points(self) -> int:
        return int(self.data_info["n_points"])

    @property
    def streamed(self) -> bool:
        """Whether the training split is read from the file every epoch (:mod:`.streaming`)."""
        return not isinstance(self.train, OperatorDataset)

    def grid(self, coarse: bool) -> tuple[Any, torch.Tensor | None]:
        """The training pairs of an epoch: the coarse grid's or the full grid's (a streamed
        split stands for both tensors: ``(StreamedSplit, None)``)."""
        if coarse:
            assert self.coarse_x is not None and self.coarse_y is not None
            return self.coarse_x, self.coarse_y
        if self.streamed:
            return self.train, None
        return self.train.x, self.train.y

    def shared_tensors(self) -> Iterator[torch.Tensor]:
        """The large tensors (what goes to shared memory for spawned ranks)."""
        for ds in (self.train, self.val, self.test):
            if isinstance(ds, OperatorDataset):
                yield from (ds.x, ds.y)
        for t in (self.coarse_x, self.coarse_y):
            if t is not None:
                yield t

    def to(self, device: torch.device) -> None:
        """Keep the splits on a GPU when they fit in half its free memory (no copies per step);
        otherwise they stay in host memory and batches are streamed through pinned buffers."""
        if device.type != "cuda":
            return
        splits = [ds for ds in (self.train, self.val) if isinstance(ds, OperatorDataset)]
        nbytes = sum(t.numel() * t.element_size() for d in splits for t in (d.x, d.y))
        free, _ = torch.cuda.mem_get_info(device)
        if nbytes < 0.5 * free:
            for ds in splits:
                ds.to(device)


def check_grid(cfg: RunConfig, n_points: int) -> None:
    """Refuse more Fourier modes than the training grid (or the coarse grid) plus padding holds."""
    grids = [(n_points, f"data.subsample={cfg.data.subsample}")]
    if cfg.train.coarse_epochs:
        n_coarse = -(-n_points // cfg.train.coarse_factor)
        grids.append((n_coarse, f"the coarse grid of train.coarse_factor={cfg.train.coarse_factor}"))
    for n, what in grids:
        limit = (n + cfg.model.padding) // 2 + 1
        if cfg.model.n_modes > limit:
            raise ValueError(
                f"model.n_modes={cfg.model.n_modes} exceeds {limit}, the most a grid of {n} points "
                f"({what}) plus padding {cfg.model.padding} holds"
            )


def _data_info(path: Path, info: dict[str, Any], train: SplitData, cfg: RunConfig) -> dict[str, Any]:
    from ..data.storage import dataset_fingerprint

    return {
        "model": str(info.get("model", "")),
        "state_names": [str(s) for s in info["state_names"]],
        "state_units": [str(u) for u in info.get("state_units", [""] * len(info["state_names"]))],
        "time_unit": str(info.get("time_unit", "ms")),
        "current_unit": str(info.get("current_unit", "")),
        # The FNO's grid channel is t / t_end with t_end the stored window, not the last kept time.
        "t_end": float(train.t_end),
        "n_points": int(train.t.shape[0]),
        "n_points_stored": int(info["n_points"]),
        "subsample": int(cfg.data.subsample),
        "in_channels": 2,
        "dataset": str(path),
        # What the file holds (not where it is): a resumed run refuses other data with it.
        "fingerprint": dataset_fingerprint(path),
    }


def _read_test(path: Path, cfg: RunConfig) -> SplitData | None:
    from ..data.storage import split_sizes

    if split_sizes(path).get("test", 0) == 0:
        return None
    try:
        return read_split_tensors(path, "test", **_read_args(cfg))
    except ValueError:  # no usable test sample
        return None


def _read_args(cfg: RunConfig) -> dict[str, Any]:
    d = cfg.data
    return {"subsample": d.subsample, "only_ok": d.only_ok, "input_encoding": d.input_encoding}


def _usable_rows(path: Path, split: str, limit: int | None, only_ok: bool) -> Any:
    import numpy as np

    from ..data.storage import open_dataset

    with open_dataset(path) as f:
        status = np.asarray(f[split]["status"][()])
    rows = np.arange(status.shape[0] if limit is None else min(limit, status.shape[0]))
    return rows[status[rows] == 0] if only_ok else rows


def _streams(cfg: RunConfig, path: Path, info: dict[str, Any]) -> bool:
    """Whether the training split is streamed (``data.loading``; "auto": it would not fit)."""
    from ..data.storage import split_sizes
    from .streaming import MEMORY_FRACTION, available_memory, split_nbytes

    d = cfg.data
    if d.loading != "auto":
        return d.loading == "stream"
    n = split_sizes(path).get("train", 0)
    n = n if d.n_train is None else min(n, d.n_train)
    n_points = -(-int(info["n_points"]) // d.subsample)
    need, avail = split_nbytes(n, len(info["state_names"]), n_points), available_memory()
    if need <= MEMORY_FRACTION * avail:
        return False
    print(
        f"train: streaming the training split from {str(path)!r}: in memory it would take "
        f"{need / 2**30:.1f} GiB of the {avail / 2**30:.1f} GiB available (data.loading=memory forces it)",
        file=sys.stderr,
        flush=True,
    )
    return True


def prepare(cfg: RunConfig, data_path: str | os.PathLike) -> Prepared:
    """Read and normalise the splits of ``data_path`` for ``cfg`` (CPU tensors; the training
    split streamed from the file when ``data.loading`` says so, :mod:`~ionfno.training.streaming`).

    Raises
    ------
    ValueError
        A split without usable samples, a grid too coarse for ``model.n_modes``.
    """
    from ..data.storage import dataset_info

    path = Path(data_path)
    info = dataset_info(path)
    if _streams(cfg, path, info):
        return _prepare_streamed(cfg, path, info)
    train = read_split_tensors(path, "train", limit=cfg.data.n_train, **_read_args(cfg))
    val = read_split_tensors(path, "val", limit=cfg.data.n_val, **_read_args(cfg))
    check_grid(cfg, int(train.t.shape[0]))
    data_info = _data_info(path, info, train, cfg)
    in_norm, out_norm = fit_normalizers(cfg.data.normalization, train, cfg.data.input_normalization)
    t_end = data_info["t_end"]
    train_ds = OperatorDataset(train, t_end, in_norm, out_norm)
    del train  # the raw split: only the normalised pairs are kept
    val_ds = OperatorDataset(val, t_end, in_norm, out_norm)
    test = _read_test(path, cfg)
    test_ds = None if test is None else OperatorDataset(test, t_end, in_norm, out_norm)
    coarse_x = coarse_y = None
    if cfg.train.coarse_epochs:
        # Contiguous copies: batches gathered from a strided view would be strided too.
        k = cfg.train.coarse_factor
        coarse_x = train_ds.x[..., ::k].contiguous()  # (n, 2, ceil(N / k))
        coarse_y = train_ds.y[..., ::k].contiguous()  # (n, S, ceil(N / k))
    weights = part_sampling_weights(train_ds.part, cfg.train.part_weights) if cfg.train.part_weights else None
    return Prepared(train_ds, val_ds, test_ds, coarse_x, coarse_y, in_norm, out_norm, data_info, weights)


def part_sampling_weights(parts: list[str], weights: Mapping[str, float]) -> torch.Tensor:
    """Each training sample's draw weight, shape ``(n,)``: ``weights[part]``, 1 for parts not named.

    With these as the probabilities of an epoch's ``n`` draws (with replacement), a sample of
    part ``p`` is drawn ``weights[p]`` times as often as a sample of an unnamed part; a part's
    share of the epoch becomes ``w_p n_p / sum_q w_q n_q``.

    Raises
    ------
    ValueError
        A named part that the training split does not have (the message lists its parts), or
        weights that leave no sample to draw.
    """
    present = sorted(set(parts))
    unknown = sorted(set(weights) - set(present))
    if unknown:
        raise ValueError(
            f"train.part_weights names part(s) {unknown} that the training split lacks; its parts: {present}"
        )
    w = torch.tensor([float(weights.get(p, 1.0)) for p in parts], dtype=torch.float64)
    if not bool((w > 0).any()):
        raise ValueError(
            f"train.part_weights {dict(weights)} leave no training sample to draw (parts: {present})"
        )
    return w


def _prepare_streamed(cfg: RunConfig, path: Path, info: dict[str, Any]) -> Prepared:
    from .streaming import StreamedSplit, fit_normalizers_streamed

    if cfg.train.coarse_epochs:
        raise ValueError(
            "a streamed training split (data.loading) has no coarse-grid copy for the curriculum: "
            "set train.coarse_epochs=0, or data.loading=memory"
        )
    if cfg.train.part_weights:
        raise ValueError(
            "a streamed training split (data.loading) is read in file order blocks and cannot be drawn "
            "by part: leave train.part_weights empty, or set data.loading=memory"
        )
    d = cfg.data
    rows = _usable_rows(path, "train", d.n_train, d.only_ok)
    if rows.size == 0:
        raise ValueError(f"Split 'train' of {str(path)!r} has no usable samples")
    read_kw = {"subsample": d.subsample, "input_encoding": d.input_encoding}
    first = read_split_tensors(path, "train", indices=rows[:1], only_ok=False, **read_kw)
    check_grid(cfg, int(first.t.shape[0]))
    data_info = _data_info(path, info, first, cfg)
    in_norm, out_norm = fit_normalizers_streamed(
        d.normalization, d.input_normalization, path, "train", rows, read_kw
    )
    t_end = data_info["t_end"]
    train_ds = StreamedSplit(path, "train", rows, read_kw, t_end, in_norm, out_norm,
                             n_states=len(data_info["state_names"]), n_points=int(first.t.shape[0]))
    val = read_split_tensors(path, "val", limit=d.n_val, **_read_args(cfg))
    val_ds = OperatorDataset(val, t_end, in_norm, out_norm)
    test = _read_test(path, cfg)
    test_ds = None if test is None else OperatorDataset(test, t_end, in_norm, out_norm)
    return Prepared(train_ds, val_ds, test_ds, None, None, in_norm, out_norm, data_info)
