"""A training split larger than memory: read from the dataset file block by block, every epoch.

:func:`ionfno.training.data.prepare` keeps the training split in memory when it fits in
:data:`MEMORY_FRACTION` of the memory available (``data.loading = "auto"``, the default) and
otherwise streams it with :class:`StreamedSplit`; ``data.loading = "stream"`` or ``"memory"``
forces either. Validation and test splits are always read into memory (they are small).

Streaming order: the usable samples are cut into blocks of :data:`BLOCK_ROWS` consecutive
stored samples (one HDF5 chunk is one sample, so a block is one contiguous read); each epoch
draws a random order of the blocks, reads about :data:`BUFFER_BYTES` worth of blocks at a
time, shuffles the samples inside that buffer, and cuts batches from the stream (a batch may
span two buffers). The generator is the run's shuffle generator, so the order is reproducible
and resumes like the in-memory one; every rank of a data-parallel run reads the same buffers
and takes its own share of each batch. Memory: one buffer (plus the batch being cut), whatever
the split's size. The order is a block shuffle, not a full permutation: an epoch visits every
sample exactly once, but samples of one block meet in the same buffer.

The normalisers are fitted in one pass over the blocks (float64 sums), equal to the in-memory
fit up to float32 rounding.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "MEMORY_FRACTION",
    "BLOCK_ROWS",
    "BUFFER_BYTES",
    "available_memory",
    "split_nbytes",
    "StreamedSplit",
    "fit_normalizers_streamed",
]

#: ``data.loading = "auto"`` streams a training split larger than this share of the available memory.
MEMORY_FRACTION = 0.5
#: Consecutive stored samples read in one HDF5 call.
BLOCK_ROWS = 64
#: Memory of one buffer of read samples (raw and encoded), rounded to whole blocks (at least one).
BUFFER_BYTES = 256 * 2**20


def available_memory() -> int:
    """Bytes of memory available to new allocations (``MemAvailable`` on Linux)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def split_nbytes(n_samples: int, n_states: int, n_points: int) -> int:
    """Bytes of a split's training tensors in memory: float32 ``x (n, 2, N)`` and ``y (n, S, N)``,
    and the raw float32 arrays they are encoded from (``(n, 1 + S, N)``), alive together."""
    return 4 * n_samples * n_points * ((2 + n_states) + (1 + n_states))


class StreamedSplit:
    """The training pairs of a split, read, encoded and normalised a buffer at a time.

    Stands where an :class:`~ionfno.data.dataset.OperatorDataset` stands in
    :class:`~ionfno.training.data.Prepared`: ``len()``, ``shape`` ``(n, 2, N)``, and
    :meth:`batches` instead of indexing.

    Parameters
    ----------
    path : path-like
        Dataset file.
    split : str
        Split name (``"train"``).
    rows : ndarray of int, shape (n,)
        Increasing positions of the usable samples in the stored split.
    read_kw : dict
        ``subsample`` and ``input_encoding`` for :func:`~ionfno.data.dataset.read_split_tensors`.
    t_end : float
        Window ``T`` (the grid channel is ``t / T``).
    input_normalizer, output_normalizer : nn.Module
        Fitted normalisers.
    n_states, n_points : int
        ``S`` and ``N`` of the pairs.
    block_rows : int
        Samples per block (one HDF5 read).
    buffer_rows : int, optional
        Samples per buffer (default: :data:`BUFFER_BYTES` worth, whole blocks, at least one).
    """

    def __init__(self, path: str | os.PathLike, split: str, rows: np.ndarray, read_kw: dict[str, Any],
                 t_end: float, input_normalizer: torch.nn.Module, output_normalizer: torch.nn.Module,
                 n_states: int, n_points: int, *, block_rows: int = BLOCK_ROWS,
                 buffer_rows: int | None = None) -> None:
        self.path, self.split = Path(path), split
        self.rows = np.asarray(rows, dtype=np.int64)
        self.read_kw = dict(read_kw)
        self.t_end = float(t_end)
        self.input_normalizer, self.output_normalizer = input_normalizer, output_normalizer
        self.n_states, self.n_points = int(n_states), int(n_points)
        self.block_rows = max(1, int(block_rows))
        if buffer_rows is None:
            per_sample = split_nbytes(1, self.n_states, self.n_points)
            buffer_rows = (BUFFER_BYTES // per_sample) // self.block_rows * self.block_rows
        self.buffer_rows = max(self.block_rows, int(buffer_rows))

    def __len__(self) -> int:
        return int(self.rows.size)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(n, 2, N)``, the shape of the in-memory ``x`` it replaces."""
        return (len(self), 2, self.n_points)

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def read(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised pairs of stored samples ``rows`` (increasing): ``x (b, 2, N)``, ``y (b, S, N)``."""
        from ..data.dataset import OperatorDataset, read_split_tensors

        data = read_split_tensors(self.path, self.split, indices=rows, only_ok=False, **self.read_kw)
        ds = OperatorDataset(data, self.t_end, self.input_normalizer, self.output_normalizer)
        return ds.x, ds.y

    def head(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``n`` usable samples (what the time-limit probe times)."""
        return self.read(self.rows[: max(1, min(int(n), len(self)))])

    def blocks(self) -> list[np.ndarray]:
        """The stored positions of each block (consecutive usable samples)."""
        return [self.rows[i : i + self.block_rows] for i in range(0, len(self), self.block_rows)]

    def batches(
        self, batch_size: int, generator: torch.Generator
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of whole batches ``(x, y)`` in the streamed order (module docstring).

        ``ceil(n / batch_size)`` batches; only the last may be short.
        """
        blocks = self.blocks()
        order = torch.randperm(len(blocks), generator=generator).tolist()
        per_buffer = max(1, self.buffer_rows // self.block_rows)
        carry_x = carry_y = None
        for s in range(0, len(order), per_buffer):
            rows = np.sort(np.concatenate([blocks[i] for i in order[s : s + per_buffer]]))
            x, y = self.read(rows)
            perm = torch.randperm(x.shape[0], generator=generator)
            x, y = x[perm], y[perm]
            if carry_x is not None:
                x, y = torch.cat([carry_x, x]), torch.cat([carry_y, y])
            whole = (x.shape[0] // batch_size) * batch_size
            for b in range(0, whole, batch_size):
                yield x[b : b + batch_size], y[b : b + batch_size]
            carry_x, carry_y = (x[whole:], y[whole:]) if whole < x.shape[0] else (None, None)
        if carry_x is not None:
            yield carry_x, carry_y

    def shared_tensors(self) -> Iterator[torch.Tensor]:
        """Nothing large: every rank reads the file itself."""
        return iter(())


def fit_normalizers_streamed(kind: str, input_kind: str | None, path: str | os.PathLike, split: str,
                             rows: np.ndarray, read_kw: dict[str, Any],
                             block_rows: int = BLOCK_ROWS) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The normalisers :func:`~ionfno.training.model.fit_normalizers` would fit, in one pass over blocks.

    Point-wise: mean and unbiased std per channel and time index; channel: per channel over
    samples and time; sums in float64.

    Parameters
    ----------
    kind, input_kind : str
        As ``data.normalization`` and ``data.input_normalization``.
    path, split, rows, read_kw
        As :class:`StreamedSplit`.
    """
    from ..data.dataset import read_split_tensors
    from ..data.normalize import ChannelNormalizer, PointwiseNormalizer

    in_kind = kind if input_kind in (None, "same") else input_kind
    sums: dict[str, list[torch.Tensor]] = {}
    n = 0
    for i in range(0, len(rows), block_rows):
        d = read_split_tensors(path, split, indices=rows[i : i + block_rows], only_ok=False, **read_kw)
        for name, a in (("input", d.i_app[:, None, :]), ("output", d.states)):
            a = a.double()
            s = [a.sum(dim=0), (a * a).sum(dim=0)]  # (C, N) each
            sums[name] = s if name not in sums else [sums[name][0] + s[0], sums[name][1] + s[1]]
        n += d.i_app.shape[0]
    if n < 2:
        raise ValueError(f"fitting a normaliser needs at least 2 training samples, got {n}")

    def build(which: str, k: str) -> torch.nn.Module:
        s1, s2 = sums[which]
        if k == "pointwise":
            mean = s1 / n
            var = (s2 - n * mean * mean) / (n - 1)
            return PointwiseNormalizer(mean.float(), var.clamp_min(0).sqrt().float())
        if k == "channel":
            m = n * s1.shape[1]
            mean = s1.sum(dim=1) / m
            var = (s2.sum(dim=1) - m * mean * mean) / (m - 1)
            return ChannelNormalizer(mean.float(), var.clamp_min(0).sqrt().float(),
                                     torch.zeros(s1.shape[0], dtype=torch.bool))
        raise ValueError(f"Unknown normalization {k!r}; expected 'pointwise' or 'channel'")

    return build("input", in_kind), build("output", kind)
