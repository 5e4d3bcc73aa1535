"""A causal surrogate: one FNO that steps the cell through the window chunk by chunk.

The study's FNO maps the whole window's current to the whole window's states in one call, so
every output point sees the future input and absolute time; on random currents it memorises the
training currents rather than the cell's response (RESULTS.md, issue 19). :class:`ChunkedRollout`
learns the cell's *flow map* instead: from the state ``y(t_k)`` at a chunk's start and the current
over the chunk ``[t_k, t_k + chunk dt]``, the states over that chunk. Rolled out from the rest
state, chunk after chunk, it is causal at the chunk scale (a state never depends on current more
than one chunk ahead), time-invariant (it never sees absolute time) and it starts exactly at the
initial state (so the study's point-wise metric, whose deviation is zero at t = 0, is defined):

.. math::

    y(t_k + \\tau) = y(t_k) + \\sigma \\odot \\big(f(\\tau) - f(0)\\big), \\qquad
    f = \\mathrm{FNO}\\big[\\tilde I(t_k + \\cdot),\\ \\tilde y(t_k),\\ \\tau / \\Delta\\big],

with ``tilde`` the channel-normalised current and state (``sigma`` the states' standard
deviations) and ``Delta`` the chunk length. The same idea as flow-map learning of dynamical
systems (Qin, Wu & Xiu 2019, doi:10.1016/j.jcp.2019.06.042) with an FNO as the chunk map.

The network is trained end to end through the rollout (the training loop's loss on the whole
window), so it learns to correct its own drift; optionally after teacher-forced epochs
(``train.teacher_forcing_epochs``, :meth:`ChunkedRollout.teacher_forced`), in which every chunk
starts from the true state, as in the teacher forcing of recurrent networks (Williams & Zipser
1989, doi:10.1162/neco.1989.1.2.270). On FHN that reached in 42 minutes the validation error the
end-to-end run needed 71 for (RESULTS.md, "teacher forcing the rollout").
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["ChunkedRollout"]


class ChunkedRollout(nn.Module):
    """Roll a chunk-map FNO through the window: ``(B, C, N) -> (B, S, N)``.

    Parameters
    ----------
    chunk_map : nn.Module
        An FNO ``(B, 2 + S, chunk + 1) -> (B, S, chunk + 1)``; input channels: the current, the
        ``S`` states at the chunk's start (constant over the chunk) and ``tau / Delta`` in [0, 1].
    n_states : int
        ``S``.
    chunk : int
        Grid intervals per step (``chunk + 1`` points, the first the previous step's last).

    Notes
    -----
    The input ``x[:, 0]`` is the current as the data pipeline normalised it (per channel: the
    same scale at every time, which time invariance needs); ``x[:, 1:]`` (the grid) is ignored.
    The output is in the point-wise normalised space of the training loss,
    ``(y - out_mean) / out_scale``. The statistics (:meth:`calibrate`) are buffers saved in the
    state dict; a model built before calibration holds empty ones, and loading a state dict
    gives them their stored shapes.
    """

    _STATS = ("y0", "state_mean", "state_std", "out_mean", "out_scale")

    def __init__(self, chunk_map: nn.Module, n_states: int, chunk: int) -> None:
        super().__init__()
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1 grid interval, got {chunk}")
        self.chunk_map = chunk_map
        # A constant added to every point of f cancels in f - f(0): the chunk map's output bias
        # (FNO1d's projection.fc2.bias) would be an unused parameter, its rounding-noise gradient
        # blown up to full steps by Adam. Frozen at zero instead (kept in the state dict).
        bias = getattr(getattr(getattr(chunk_map, "projection", None), "fc2", None), "bias", None)
        if isinstance(bias, nn.Parameter):
            with torch.no_grad():
                bias.zero_()
            bias.requires_grad_(False)
        self.n_states = int(n_states)
        self.chunk = int(chunk)
        # Derived from `chunk`, so not saved: weights trained with one chunk length load into a
        # rollout of another (fine-tuning with `--init` at a new model.chunk).
        self.register_buffer("tau", torch.linspace(0.0, 1.0, self.chunk + 1), persistent=False)
        for name in self._STATS:
            self.register_buffer(name, torch.empty(0))

    def extra_repr(self) -> str:
        return f"n_states={self.n_states}, chunk={self.chunk}"

    @torch.no_grad()
    def calibrate(self, mean: Tensor, std: Tensor, eps: float, *, tol: float = 1e-6) -> None:
        """Set the statistics from the point-wise output normaliser of the training split.

        Parameters
        ----------
        mean, std : Tensor, shape (S, N)
            Point-wise mean and standard deviation of the training states (physical units).
        eps : float
            The normaliser's ``eps``: outputs are ``(y - mean) / (std + eps)``.
        tol : float
            Largest spread of the initial states, relative to each state's scale.

        Raises
        ------
        ValueError
            If the samples do not share one initial state (the rollout starts every sample from
            ``mean[:, 0]``; the surrogate's input is the current alone).

        Notes
        -----
        Each state's channel mean and variance over samples and time follow from the point-wise
        ones: ``m = <mean_t>``, ``s^2 = <std_t^2 + mean_t^2> - m^2``.
        """
        mean = mean.detach().to(torch.float32)
        std = std.detach().to(torch.float32)
        if mean.ndim != 2 or mean.shape != std.shape or mean.shape[0] != self.n_states:
            raise ValueError(f"calibrate needs point-wise statistics of shape ({self.n_states}, N), "
                             f"got {tuple(mean.shape)} and {tuple(std.shape)}")
        m = mean.mean(dim=1)
        s = ((std**2 + mean**2).mean(dim=1) - m**2).clamp_min(0).sqrt().clamp_min(1e-12)
        spread = std[:, 0] / s
        if bool((spread > tol).any()):
            raise ValueError(
                "model.chunk needs every sample to start from the same state (the rollout starts "
                f"from the training mean at t = 0); the initial states' spread is {spread.tolist()} "
                "of each state's scale")
        for name, value in (("y0", mean[:, 0]), ("state_mean", m), ("state_std", s),
                            ("out_mean", mean), ("out_scale", std + eps)):
            setattr(self, name, value.to(self.tau.device).clone())

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, local_metadata: Any,
                              strict: bool, missing_keys: list[str], unexpected_keys: list[str],
                              error_msgs: list[str]) -> None:
        for name in self._STATS:
            key = prefix + name
            if key in state_dict:
                setattr(self, name, torch.empty_like(state_dict[key], device=self.tau.device))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        # Checkpoints written before `tau` stopped being saved still carry it (any length).
        if prefix + "tau" in unexpected_keys:
            unexpected_keys.remove(prefix + "tau")

    def step(self, current: Tensor, y_start: Tensor) -> Tensor:
        """One chunk: current ``(B, chunk + 1)`` (normalised), state ``(B, S)`` (physical) ->
        states ``(B, S, chunk + 1)`` (physical), the first point ``y_start`` exactly."""
        b, n = current.shape
        z = (y_start - self.state_mean) / self.state_std
        x = torch.cat([current[:, None], z[:, :, None].expand(b, self.n_states, n),
                       self.tau[None, None].expand(b, 1, n)], dim=1)
        f = self.chunk_map(x)
        return y_start[:, :, None] + (f - f[:, :, :1]) * self.state_std[None, :, None]

    def trajectory(self, x: Tensor) -> Tensor:
        """The rolled-out states in physical units, ``(B, C, N) -> (B, S, N)``."""
        if self.y0.numel() == 0:
            raise RuntimeError("ChunkedRollout has no statistics: calibrate it or load a state dict")
        current = x[:, 0]
        b, n = current.shape
        n_steps = max(1, math.ceil((n - 1) / self.chunk))
        # The last step may run past the window: hold the last current value there (those
        # points are dropped; the chunk map is not causal within a chunk, so this is a choice).
        pad = n_steps * self.chunk + 1 - n
        if pad > 0:
            current = torch.cat([current, current[:, -1:].expand(b, pad)], dim=1)
        y = self.y0[None].expand(b, self.n_states)
        pieces = [y[:, :, None]]
        for k in range(n_steps):
            states = self.step(current[:, k * self.chunk:(k + 1) * self.chunk + 1], y)
            pieces.append(states[:, :, 1:])
            y = states[:, :, -1]
        return torch.cat(pieces, dim=2)[:, :, :n]

    def teacher_forced(self, x: Tensor, y_true: Tensor, offset: int = 0) -> Tensor:
        """Every chunk started from the true state: ``(B, C, N), (B, S, N) -> (B, S, N)`` physical.

        The chunks start at ``0`` and at ``offset + k chunk`` (``offset`` taken modulo the chunk
        length; the first chunk is cut short when ``offset > 0``), each from ``y_true`` at its
        start, all in one batched call of the chunk map. Point ``j > 0`` comes from the chunk
        that ends at or after it, point ``0`` is ``y_true[..., 0]``: so every chunk's end state
        (which the rollout hands on) is trained, and a chunk's exact first point is not.

        Parameters
        ----------
        x : Tensor, shape (B, C, N)
            Normalised input (``x[:, 0]`` the current).
        y_true : Tensor, shape (B, S, N)
            True states, physical units.
        offset : int
            Start of the second chunk [grid intervals]; a random offset per batch shows the
            chunk map every start time (it is time-invariant, so the chunk grid is arbitrary).
        """
        current = x[:, 0]
        b, n = current.shape
        k = self.chunk
        starts, index = _teacher_layout(n, k, int(offset) % k, current.device)
        last = int(starts[-1]) + k + 1
        if last > n:  # hold the last current value past the window, as the rollout does
            current = torch.cat([current, current[:, -1:].expand(b, last - n)], dim=1)
        windows = current.unfold(1, k + 1, 1)[:, starts]  # (B, n_chunks, k + 1)
        y_start = y_true[:, :, starts].transpose(1, 2)  # (B, n_chunks, S)
        m = starts.numel()
        states = self.step(windows.reshape(b * m, k + 1), y_start.reshape(b * m, self.n_states))
        states = states.reshape(b, m, self.n_states, k + 1).transpose(1, 2)
        states = states.reshape(b, self.n_states, m * (k + 1))
        return states[:, :, index]

    def forward(self, x: Tensor, teacher: Tensor | None = None, offset: int = 0) -> Tensor:
        """``(B, C, N)`` normalised input -> ``(B, S, N)`` in the output normaliser's space.

        With ``teacher`` (the normalised targets, ``(B, S, N)``) the chunks start from the true
        states (:meth:`teacher_forced`) instead of the rollout's own: the training loop's
        teacher-forced epochs (``train.teacher_forcing_epochs``).
        """
        if self.y0.numel() == 0:
            raise RuntimeError("ChunkedRollout has no statistics: calibrate it or load a state dict")
        n = x.shape[-1]
        if n != self.out_mean.shape[-1]:
            raise ValueError(f"this model was calibrated on {self.out_mean.shape[-1]} time points, got {n}")
        if teacher is None:
            y = self.trajectory(x)
        else:
            y = self.teacher_forced(x, teacher * self.out_scale + self.out_mean, offset)
        return (y - self.out_mean) / self.out_scale


def _teacher_layout(n: int, chunk: int, offset: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Chunk starts ``(n_chunks,)`` and, per window point, its index ``(N,)`` into the chunks'
    concatenated points (chunk ``c``'s local point ``i`` at ``c (chunk + 1) + i``): point ``j > 0``
    belongs to the chunk ``c`` with ``start_c < j <= start_{c+1}``, point 0 to chunk 0."""
    first = offset if offset > 0 else chunk
    starts = torch.cat([torch.zeros(1, dtype=torch.long, device=device),
                        torch.arange(first, max(first, n - 1), chunk, device=device)])
    j = torch.arange(n, device=device)
    c = (torch.searchsorted(starts, j) - 1).clamp_min(0)
    return starts, c * (chunk + 1) + j - starts[c]
