"""Batched exponential integrators: Rush–Larsen for the gates, explicit for the rest.

Every model writes its gates as ``dx/dt = a(y) x + b(y)`` (``a = -1/tau``) and returns the
diagonal coefficient ``a`` next to the vector field (:meth:`IonicModel.rhs_linear`; ``a = 0``
for the other states). Freezing ``a`` and ``b`` over a step and solving exactly gives the
(generalised) Rush–Larsen update, which is stable for any step on the gates however fast
they are:

.. math::

    y_{n+1} = y_n + h\\,\\varphi_1(a h)\\,(a y_n + b) = y_n + h\\,\\varphi_1(a h)\\,f(y_n),
    \\qquad \\varphi_1(z) = \\frac{e^z - 1}{z},

which is forward Euler where ``a = 0``. Two schemes use it:

* ``RL1`` (order 1): the classical Rush–Larsen scheme, the update above with ``a, f`` at
  ``y_n``.
* ``RL2`` (order 2): an exponential Heun (trapezoidal) step. With the RL1 predictor
  ``y^* = y_n + h\\varphi_1(a_0 h) f_0`` and ``a_1, f_1`` evaluated at ``(t_n + h, y^*)``,

  .. math::

      y_{n+1} = y_n + h\\,\\varphi_1(\\bar a h)\\,\\tfrac12\\left(f_0 + f_1 + a_1 (y_n - y^*)\\right),
      \\qquad \\bar a = \\tfrac12 (a_0 + a_1),

  i.e. ``a`` and ``b = f - a y`` averaged over the step (Heun's method where ``a = 0``; exact
  for constant ``a, b``). ``y_{n+1} - y^*`` is the embedded first-order error estimate that
  drives the per-sample step size.

Dense output, used to fill the output grid without stepping onto it, continues the same
formulas with weights ``1 - theta/2`` and ``theta/2`` at ``t_n + theta h``: second order,
exact for a gate relaxing at constant rates, and never overshooting a gate (a cubic Hermite
interpolant of a gate that relaxes within the step does).

Each sample has its own time, step size and position in the output grid; all samples of a
chunk advance together in vectorised NumPy (one model call per stage for the whole chunk),
finished or failed samples are dropped from the working set, and every step ends exactly on
the next discontinuity of the sample's stimulus (``stimulus.jump_times``) when it would
otherwise cross it, with the stimulus evaluated on the piece inside the step.

Caveat, as myokit's OpenCL simulation puts it for its own Rush–Larsen option: stability does
not imply accuracy. The exponential update keeps fast gates stable at any step, but a
fixed-step RL1 run of ORd at dt = 0.01 ms is still 5 % (of each variable's range) away from
the true solution; use the adaptive ``fast`` solver, or check fixed-step results against
``reference``.

References
----------
Rush S., Larsen H. (1978) A practical algorithm for solving dynamic membrane equations.
IEEE Trans Biomed Eng 25(4):389-392. doi:10.1109/TBME.1978.326270.
Sundnes J., Artebrant R., Skavhaug O., Tveito A. (2009) A second-order algorithm for solving
dynamic cell membrane equations. IEEE Trans Biomed Eng 56(10):2546-2548.
doi:10.1109/TBME.2009.2014739.
Perego M., Veneziani A. (2009) An efficient generalization of the Rush-Larsen method for
solving electro-physiology membrane equations. ETNA 35:234-256.
"""

from __future__ import annotations

import math
import time
from typing import Any, ClassVar

import numpy as np

from ..ionic.base import IonicModel
from ..stimulus import Stimulus
from .base import Solver, Status, state_floor

__all__ = ["ExponentialSolver", "phi1", "RL1", "RL2"]


def phi1(z: np.ndarray) -> np.ndarray:
    """``phi1(z) = expm1(z) / z``, with ``phi1(0) = 1``.

    Below ``|z| < 1e-5`` the series ``1 + z/2 + z^2/6`` is used (truncation < 5e-17,
    relative); above it ``expm1`` keeps full relative accuracy.
    """
    small = np.abs(z) < 1e-5
    zs = np.where(small, 1.0, z)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(small, 1.0 + z * (0.5 + z / 6.0), np.expm1(zs) / zs)


class ExponentialSolver(Solver):
    """Rush–Larsen-type batched solver, fixed step or error controlled (see module docstring).

    Parameters
    ----------
    scheme : {"rl1", "rl2"}
        ``rl1``: classical Rush–Larsen (order 1, fixed step only). ``rl2``: exponential Heun
        (order 2) with the embedded RL1 estimate.
    adaptive : bool
        Error-controlled step size (``rl2`` only). With ``dt`` given to :meth:`solve`, a
        solver runs in fixed-step mode whatever this flag says.
    tol : float
        Default tolerance: ``rtol = tol`` and ``atol = tol * floor`` per state (floor from
        :data:`ionfno.solvers.base.UNIT_FLOOR`: 1 mV, 1e-2 for gates, 1e-5 mM, ...).
    dt_default : float or None
        Step used when the solver is fixed-step and no ``dt`` is given [time unit].
    max_step : float
        Largest step of the adaptive mode [time unit].
    chunk_size : int
        Samples integrated together; the working set of one chunk should fit in cache.

    Notes
    -----
    The error norm is the max over states of ``|y_{n+1} - y^*| / (atol + rtol * M)`` where
    ``M`` is the largest ``|y|`` the sample has reached so far (so a state that rises from
    near zero, like ORd's J_rel, is controlled relative to its peak, not its resting value).
    Step size: ``h <- h * clip(0.9 err^{-1/2}, 0.2, 5)``; a step with a non-finite result is
    retried at a quarter of the size, and the sample is flagged NONFINITE once that falls
    below ``1e-12 * t_end`` (or at once if the derivative at an accepted state is not
    finite).
    """

    name: ClassVar[str] = "fast"

    def __init__(
        self,
        scheme: str = "rl2",
        *,
        adaptive: bool = True,
        tol: float = 1e-6,
        dt_default: float | None = None,
        max_step: float = math.inf,
        chunk_size: int = 512,
    ) -> None:
        if scheme not in ("rl1", "rl2"):
            raise ValueError(f"Unknown scheme {scheme!r}; expected one of ['rl1', 'rl2']")
        if scheme == "rl1" and adaptive:
            raise ValueError("rl1 has no embedded error estimate; use adaptive=False")
        self.scheme = scheme
        self.order = 1 if scheme == "rl1" else 2
        self.adaptive = adaptive
        self.tol = tol
        self.dt_default = dt_default
        self.max_step = max_step
        self.chunk_size = chunk_size

    def __repr__(self) -> str:
        return (f"ExponentialSolver({self.scheme!r}, adaptive={self.adaptive}, tol={self.tol:g}, "
                f"dt_default={self.dt_default}, max_step={self.max_step}, chunk_size={self.chunk_size})")

    def default_tolerances(self, model: IonicModel) -> tuple[float, np.ndarray]:
        return self.tol, self.tol * state_floor(model)

    # ------------------------------------------------------------------ driver
    def solve(self, model, stimulus, t_eval, t_end, y0, params, *, rtol, atol, dt, max_steps, progress,
              chunk_size=None):
        if dt is None and not self.adaptive:
            if self.dt_default is None:
                raise ValueError(f"solver {self.name!r} is fixed-step: give dt")
            dt = self.dt_default
        B, n = y0.shape
        N = t_eval.shape[0]
        atol = np.broadcast_to(np.asarray(atol, dtype=np.float64), (n,))
        chunk = int(chunk_size or self.chunk_size)
        states = np.empty((B, n, N))
        status = np.zeros(B, dtype=np.int8)
        steps = np.zeros(B, dtype=np.int64)
        rejected = np.zeros(B, dtype=np.int64)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=B, desc=f"{model.name} ({self.name})", unit="sample")
        for lo in range(0, B, chunk):
            sl = slice(lo, min(lo + chunk, B))
            out = np.full((sl.stop - lo, N, n), np.nan)  # (b, N, n): one contiguous row per write
            self._chunk(model, stimulus.select(np.arange(sl.start, sl.stop)), t_eval, t_end, y0[sl], params,
                        rtol, atol, dt, max_steps, out, status[sl], steps[sl], rejected[sl])
            states[sl] = out.transpose(0, 2, 1)
            if bar is not None:
                bar.update(sl.stop - lo)
        if bar is not None:
            bar.close()
        evals = (2 if self.scheme == "rl2" else 1) * (steps + rejected)
        return states, status, {"steps": steps, "rejected": rejected, "rhs_evals": evals}

    # ------------------------------------------------------------------ one chunk
    def _chunk(self, model: IonicModel, stim: Stimulus, t_eval: np.ndarray, t_end: float, y0: np.ndarray,
               params: Any, rtol: float, atol: np.ndarray, dt: float | None, max_steps: int | None,
               out: np.ndarray, status: np.ndarray, steps: np.ndarray, rejected: np.ndarray) -> None:
        b, n = y0.shape
        fixed = dt is not None
        two_stage = self.scheme == "rl2"
        # Stops: each sample's stimulus edges, then t_end; a step never crosses a stop.
        edges = stim.jump_times(t_end)
        stops = np.concatenate([edges, np.full((b, 1), float(t_end))], axis=1)
        stops = np.where(stops < t_end, stops, t_end)  # padding (+inf) -> t_end
        if max_steps is None:
            max_steps = (int(math.ceil(t_end / dt)) + 2 * stops.shape[1] + 10) if fixed else 100_000
        h_min = 1e-12 * t_end

        # Working set (compacted as samples finish): local arrays indexed 0..m-1.
        idx = np.arange(b)  # chunk row of each working sample
        t = np.zeros(b)
        y = y0.copy()
        ymax = np.abs(y0)
        k = np.zeros(b, dtype=np.int64)  # next stop
        g = np.full(b, int(np.searchsorted(t_eval, 0.0, side="right")), dtype=np.int64)  # next grid point
        out[:, : g[0], :] = y0[:, None, :]
        nstep = np.zeros(b, dtype=np.int64)
        nrej = np.zeros(b, dtype=np.int64)
        sub = stim

        if fixed:
            h = np.full(b, float(dt))
        else:
            # First step from the size of the derivative (Hairer, Norsett & Wanner, II.4).
            f0, _ = model.rhs_linear(t, y, params, sub.current(t, np.minimum(stops[:, 0], 1e-9 * t_end)))
            sc = atol + rtol * ymax
            with np.errstate(invalid="ignore", divide="ignore"):
                d0 = np.max(np.abs(y) / sc, axis=1)
                d1 = np.max(np.abs(f0) / sc, axis=1)
                h = np.where((d0 < 1e-5) | (d1 < 1e-5) | ~np.isfinite(d1), 1e-6 * t_end, 0.01 * d0 / d1)
            h = np.minimum(h, self.max_step)
            h = np.where(np.isfinite(h) & (h > 0), h, 1e-6 * t_end)

        while idx.size:
            m = idx.size
            ar = np.arange(m)
            stop = stops[idx, k]
            if fixed:
                snap = stop - t <= h * (1.0 + 1e-9)
            else:
                h = np.minimum(h, self.max_step)
                snap = stop - t <= 1.1 * h  # stretch a step by up to 10 % rather than leave a sliver
            hs = np.where(snap, stop - t, h)  # the step taken
            tn = np.where(snap, stop, t + hs)
            within = t + 0.5 * hs
            hc = hs[:, None]

            f0, a0 = model.rhs_linear(t, y, params, sub.current(t, within))
            y1 = y + hc * phi1(a0 * hc) * f0
            if two_stage:
                f1, a1 = model.rhs_linear(tn, y1, params, sub.current(tn, within))
                G1 = f1 + a1 * (y - y1)
                y2 = y + hc * phi1(0.5 * (a0 + a1) * hc) * (0.5 * (f0 + G1))
            else:
                y2 = y1
            with np.errstate(invalid="ignore", over="ignore"):
                finite = np.all(np.isfinite(y2), axis=1)
                if two_stage:
                    sc = atol + rtol * np.maximum(ymax, np.abs(y2))
                    err = np.max(np.abs(y2 - y1) / sc, axis=1)
                    finite &= np.isfinite(err)
            bad_f = ~np.all(np.isfinite(f0), axis=1)
            if fixed:
                acc = finite
                fail = ~finite
            else:
                acc = finite & (err <= 1.0)
                fail = bad_f | (~finite & (hs <= h_min))
                with np.errstate(divide="ignore", invalid="ignore"):
                    fac = np.where(finite, np.clip(0.9 * err ** -0.5, 0.2, 5.0), 0.25)
                h = np.where(finite, hs, h) * fac  # snapped steps restart from their own size
            acc &= ~fail

            # Output grid points in (t, tn] from the dense output of the accepted steps.
            if acc.any():
                gnew = np.where(acc, np.searchsorted(t_eval, tn, side="right"), g)
                c = gnew - g
                if c.any():
                    rr = np.repeat(ar, c)
                    offs = np.arange(rr.size) - np.repeat(np.cumsum(c) - c, c)
                    gi = g[rr] + offs
                    th = ((t_eval[gi] - t[rr]) / hs[rr])[:, None]
                    hh = th * hc[rr]
                    if two_stage:
                        w = 0.5 * th
                        aa = (1.0 - w) * a0[rr] + w * a1[rr]
                        vals = y[rr] + hh * phi1(aa * hh) * ((1.0 - w) * f0[rr] + w * G1[rr])
                    else:
                        vals = y[rr] + hh * phi1(a0[rr] * hh) * f0[rr]
                    # A grid point at the end of the step gets y_{n+1} itself, bit for bit.
                    end = gi_is_end = (t_eval[gi] == tn[rr])
                    if gi_is_end.any():
                        vals[end] = y2[rr[end]]
                    out[idx[rr], gi, :] = vals
                g = gnew
                t = np.where(acc, tn, t)
                y = np.where(acc[:, None], y2, y)
                ymax = np.maximum(ymax, np.where(acc[:, None], np.abs(y2), 0.0))
                kk = acc & snap
                k = k + kk
                # Coincident stops (a pulse ending where the next begins): skip those passed.
                last = stops.shape[1] - 1
                while True:
                    more = (k < last) & (stops[idx, np.minimum(k, last)] <= t)
                    if not more.any():
                        break
                    k = k + more
            nstep += acc
            nrej += ~acc & ~fail
            done = acc & snap & (t >= t_end)
            over = ~done & ~fail & (nstep + nrej >= max_steps)
            status[idx[fail]] = Status.NONFINITE
            status[idx[over]] = Status.MAX_STEPS
            leave = done | fail | over
            if leave.any():
                steps[idx[leave]] = nstep[leave]
                rejected[idx[leave]] = nrej[leave]
                keep = ~leave
                kept = np.flatnonzero(keep)
                idx, t, y, ymax, k, g, h = idx[keep], t[keep], y[keep], ymax[keep], k[keep], g[keep], h[keep]
                nstep, nrej = nstep[keep], nrej[keep]
                if idx.size:
                    sub = sub.select(kept)


RL1 = ExponentialSolver("rl1", adaptive=False, dt_default=0.01)
RL2 = ExponentialSolver("rl2", adaptive=True)
