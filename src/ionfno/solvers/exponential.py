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
* ``RL2`` (order 2): Heun's method on the non-gates; on the gates an exponential
  (ETD2) step with ``a`` frozen at its average over the step. With the RL1 predictor
  ``y^* = y_n + h\\varphi_1(a_0 h) f_0`` and ``a_1, f_1`` evaluated at ``(t_n + h, y^*)``,
  ``\\bar a = (a_0 + a_1)/2`` and the remainder ``N = f - \\bar a y`` taken linear in time,

  .. math::

      y_{n+1} = y_n + h\\,\\varphi_1(\\bar a h)\\,f_0
                + h\\,\\varphi_2(\\bar a h)\\,\\bigl(f_1 - f_0 - \\bar a (y^* - y_n)\\bigr),
      \\qquad \\varphi_2(z) = \\frac{e^z - 1 - z}{z^2},

  which is Heun's method where ``a = 0`` and exact for constant ``a`` and ``b`` linear in
  time, so a fast gate tracking its moving steady state ``x_inf(V(t))`` keeps its lag
  (averaging ``a`` and ``b`` instead, as RL2 schemes often do, drops to first order there).
  ``y_{n+1} - y^*`` is the embedded first-order error estimate that drives the per-sample
  step size.

Dense output, used to fill the output grid without stepping onto it, evaluates the same
formula at ``t_n + theta h`` (``h -> theta h``, the ``varphi_2`` term times ``theta``):
second order, exact for a gate relaxing at constant rates, and never overshooting a gate (a
cubic Hermite interpolant of a gate that relaxes within the step does).

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
from typing import Any

import numpy as np

from ..ionic.base import IonicModel
from ..stimulus import Stimulus
from .base import Solver, Status, output_array, state_floor

__all__ = ["ExponentialSolver", "DEFAULT_TOL", "phi1", "phi12"]

ROUNDING_FLOOR = 16 * 2.220446049250313e-16
"""Smallest error scale per state, relative to ``|y|``: 16 float64 epsilons. The embedded
estimate ``y_{n+1} - y^*`` of a state far from zero carries a few ulps of rounding; with a
tiny ``atol + rtol * range`` (tolerances near 1e-10) the error test could not pass at any
step size, and the step would shrink to underflow. Far below every practical tolerance."""


def phi1(z: np.ndarray) -> np.ndarray:
    """``phi1(z) = expm1(z) / z``, with ``phi1(0) = 1``.

    Below ``|z| < 1e-2`` the Taylor series is used (truncation < 1e-15, relative); above it
    ``expm1`` keeps full relative accuracy.
    """
    z = np.asarray(z, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        p1 = np.expm1(z) / z
    small = np.abs(z) < 1e-2
    if small.any():
        zs = z[small]
        p1[small] = 1.0 + zs * (1 / 2 + zs * (1 / 6 + zs * (1 / 24 + zs * (1 / 120 + zs / 720))))
    return p1


def phi12(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(phi1(z), phi2(z))`` with ``phi2(z) = (e^z - 1 - z) / z^2``, ``phi2(0) = 1/2``.

    Below ``|z| < 1e-2`` both come from their Taylor series (truncation < 1e-15,
    relative), which also avoids the cancellation in ``e^z - 1 - z``.
    """
    z = np.asarray(z, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        e = np.expm1(z)
        p1 = e / z
        p2 = (e - z) / (z * z)
    small = np.abs(z) < 1e-2
    if small.any():
        zs = z[small]
        p1[small] = 1.0 + zs * (1 / 2 + zs * (1 / 6 + zs * (1 / 24 + zs * (1 / 120 + zs / 720))))
        p2[small] = 1 / 2 + zs * (1 / 6 + zs * (1 / 24 + zs * (1 / 120 + zs * (1 / 720 + zs / 5040))))
    return p1, p2


def _column_rhs(model: IonicModel):
    """``rhs_linear`` on states as rows, samples as columns: (n, m) in, (n, m) out.

    Models that evaluate in that layout natively expose ``rhs_linear_columns`` (ORd); for the
    others the state is transposed on the way in and out.
    """
    native = getattr(model, "rhs_linear_columns", None)
    if native is not None:
        return native

    def rhs(t, y, params, i_app):
        f, a = model.rhs_linear(t, y.T, params, i_app)
        return np.ascontiguousarray(f.T), np.ascontiguousarray(a.T)

    return rhs


def _columns(mask: np.ndarray) -> slice | np.ndarray | None:
    """Index of the True columns: a slice when contiguous (a view, no copy), else an array."""
    cols = np.flatnonzero(mask)
    if cols.size == 0:
        return None
    if cols[-1] - cols[0] + 1 == cols.size:
        return slice(int(cols[0]), int(cols[-1]) + 1)
    return cols


# Default tolerance of the adaptive scheme per model (``fast`` and ``fast_numpy``), also the
# dataset presets' (presets/mixtures/*.json): the loosest at which the largest error relative
# to each state's range stays below 1e-3, with a margin of 3 or more, against SciPy Radau at
# tol 1e-10 on samples of every part of the preset mixtures (benchmarks/bench_accuracy.py;
# tests/data/test_preset_accuracy.py). The error grows linearly with tol, with a factor that
# depends on the sample: up to ~4 for ORd (sub-threshold J_rel, prolonged depolarisation),
# ~50 for FHN (sustained currents), and up to ~1.6e4 for HH near the onset of repetitive
# firing (A ~ 6.0-6.3 µA/cm²), where the timing of late spikes is ill-conditioned.
DEFAULT_TOL: dict[str, float] = {"fhn": 2e-6, "hh": 5e-9, "ord": 5e-5, "ord-epi": 5e-5, "ord-m": 5e-5}
DEFAULT_TOL_OTHER = 1e-6


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
    tol : float or None
        Default tolerance: ``rtol = tol`` and ``atol = tol * floor`` per state (floor from
        :data:`ionfno.solvers.base.UNIT_FLOOR`: 1 mV, 1e-2 for gates, 1e-5 mM, ...). None:
        the per-model value in :data:`DEFAULT_TOL`, calibrated against ``reference``.
    dt_default : float or None
        Step used when the solver is fixed-step and no ``dt`` is given [time unit].
    max_step : float
        Largest step of the adaptive mode [time unit].
    chunk_size : int
        Samples integrated together; the working set of one chunk should fit in cache.

    Notes
    -----
    The error norm is the max over states of ``|y_{n+1} - y^*| / max(atol + rtol * M,
    ROUNDING_FLOOR |y_n|)`` where ``M`` is the range the state has covered so far (so a state
    that rises from near zero, like ORd's J_rel, is controlled relative to its excursion, not
    its resting value); the floor keeps a state far from zero with a tiny range (ORd's K_i,
    145 mM) from asking for less than its rounding noise at very tight tolerances.
    Step size: ``h <- h * clip(0.9 err^{-1/2}, 0.2, 5)``; a step with a non-finite result is
    retried at a quarter of the size, and the sample is flagged NONFINITE once that falls
    below ``1e-12 * t_end`` (or at once if the derivative at an accepted state is not
    finite).
    """

    def __init__(
        self,
        scheme: str = "rl2",
        *,
        adaptive: bool = True,
        tol: float | None = None,
        dt_default: float | None = None,
        max_step: float = math.inf,
        chunk_size: int = 512,
    ) -> None:
        if scheme not in ("rl1", "rl2"):
            raise ValueError(f"Unknown scheme {scheme!r}; expected one of ['rl1', 'rl2']")
        if scheme == "rl1" and adaptive:
            raise ValueError("rl1 has no embedded error estimate; use adaptive=False")
        self.scheme = scheme
        self.name = "fast_numpy" if adaptive else "rush_larsen"  # registry name (integrate.SOLVERS)
        self.order = 1 if scheme == "rl1" else 2
        self.adaptive = adaptive
        self.tol = tol
        self.dt_default = dt_default
        self.max_step = max_step
        self.chunk_size = chunk_size

    def __repr__(self) -> str:
        return (f"ExponentialSolver({self.scheme!r}, adaptive={self.adaptive}, tol={self.tol}, "
                f"dt_default={self.dt_default}, max_step={self.max_step}, chunk_size={self.chunk_size})")

    def default_tolerances(self, model: IonicModel) -> tuple[float, np.ndarray]:
        tol = self.tol if self.tol is not None else DEFAULT_TOL.get(model.name, DEFAULT_TOL_OTHER)
        return tol, tol * state_floor(model)

    # ------------------------------------------------------------------ driver
    def solve(self, model, stimulus, t_eval, t_end, y0, params, *, rtol, atol, dt, max_steps, progress,
              chunk_size=None, threads=None):
        if dt is None and not self.adaptive:
            if self.dt_default is None:
                raise ValueError(f"solver {self.name!r} is fixed-step: give dt")
            dt = self.dt_default
        B, n = y0.shape
        N = t_eval.shape[0]
        atol = np.broadcast_to(np.asarray(atol, dtype=np.float64), (n,))
        chunk = int(chunk_size or self.chunk_size)
        states = output_array((B, n, N))
        status = np.zeros(B, dtype=np.int8)
        steps = np.zeros(B, dtype=np.int64)
        rejected = np.zeros(B, dtype=np.int64)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=B, desc=f"{model.name} ({self.name})", unit="sample")
        for lo in range(0, B, chunk):
            hi = min(lo + chunk, B)
            # Dense output is scattered straight into states (b, n, N): each sample fills its
            # grid in time order, so the few cache lines it writes stay hot; this measured 2-8x
            # cheaper than a (b, N, n) buffer plus a transpose.
            filled = self._chunk(model, stimulus.select(np.arange(lo, hi)), t_eval, t_end, y0[lo:hi], params,
                                 rtol, atol, dt, max_steps, states[lo:hi], status[lo:hi], steps[lo:hi],
                                 rejected[lo:hi])
            for i in np.flatnonzero(filled < N):  # failed samples: NaN after the failure
                states[lo + i, :, filled[i]:] = np.nan
            if bar is not None:
                bar.update(hi - lo)
        if bar is not None:
            bar.close()
        evals = (2 if self.scheme == "rl2" else 1) * (steps + rejected)
        return states, status, {"steps": steps, "rejected": rejected, "rhs_evals": evals}

    # ------------------------------------------------------------------ dense output
    @staticmethod
    def _dense_rl2(rr, th, c, hs, y, f0, df, G, z, dN):
        """RL2's dense output at ``t + th*h`` for the working columns ``rr`` (one per grid point).

        States are rows here, samples columns (``y`` of shape (n, m)); returns (n, points).
        Rewritten from the step formula (``u = h (z f0 + dN)``, ``z = a h``) as
        ``y + th h f0 + th^2 u/2 + th^3 z u/6`` (Taylor in ``z``; truncation ``z^3/24`` of the
        increment) where ``|z| < 1e-3``, and as ``y - th h dN/z + expm1(z th) u/z^2`` (exact)
        elsewhere, so that each grid point costs one ``expm1`` per gate and a cubic in ``th``.
        The six coefficients are formed once per sample and repeated to its grid points in
        one ``np.repeat`` (``rr`` is sorted).
        """
        cols = np.flatnonzero(c)
        h = hs[cols]
        D = np.zeros((6, y.shape[0], cols.size))  # cubic in th, then expm1 weight and rate
        D[0] = y[:, cols]
        f0r = f0[:, cols]
        np.multiply(f0r, h, out=D[1])
        np.multiply(df[:, cols], 0.5 * h, out=D[2])
        if G is not None:
            zr, dNr = z[:, cols], dN[:, cols]
            u = h * (zr * f0r[G] + dNr)
            stiff = np.abs(zr) >= 1e-3
            D1, D2, D3, D4, D5 = D[1], D[2], D[3], D[4], D[5]
            with np.errstate(divide="ignore", invalid="ignore"):
                rz = 1.0 / zr
                D1[G] = np.where(stiff, -h * dNr * rz, D1[G])
                D2[G] = np.where(stiff, 0.0, 0.5 * u)
                D3[G] = np.where(stiff, 0.0, zr * u * (1.0 / 6.0))
                D4[G] = np.where(stiff, u * rz * rz, 0.0)
                D5[G] = np.where(stiff, zr, 0.0)
        Dp = np.repeat(D, c[cols], axis=2)
        vals = Dp[3] * th  # Horner, in place
        vals += Dp[2]
        vals *= th
        vals += Dp[1]
        vals *= th
        vals += Dp[0]
        if G is not None:
            e = Dp[5][G] * th
            np.expm1(e, out=e)
            e *= Dp[4][G]
            vals[G] += e
        return vals

    # ------------------------------------------------------------------ one chunk
    def _chunk(self, model: IonicModel, stim: Stimulus, t_eval: np.ndarray, t_end: float, y0: np.ndarray,
               params: Any, rtol: float, atol: np.ndarray, dt: float | None, max_steps: int | None,
               out: np.ndarray, status: np.ndarray, steps: np.ndarray, rejected: np.ndarray) -> np.ndarray:
        """Integrate one chunk into ``out`` (b, n, N); return the grid points filled per sample.

        The working arrays hold states as rows and samples as columns, (n, m) C-contiguous, so
        each state (and the block of gates) is a contiguous run of samples: elementwise
        updates run on contiguous memory, and a model with ``rhs_linear_columns`` (ORd) is
        called in its own layout without transposes.
        """
        b, n = y0.shape
        fixed = dt is not None
        two_stage = self.scheme == "rl2"
        G = _columns(model.gate_mask)  # gate rows: exponential updates; the rest explicit
        rhs = _column_rhs(model)
        atol_c = atol[:, None]
        # Stops: each sample's stimulus edges, then t_end; a step never crosses a stop.
        edges = stim.jump_times(t_end)
        stops = np.concatenate([edges, np.full((b, 1), float(t_end))], axis=1)
        stops = np.where(stops < t_end, stops, t_end)  # padding (+inf) -> t_end
        last = stops.shape[1] - 1
        if max_steps is None:
            max_steps = (int(math.ceil(t_end / dt)) + 2 * stops.shape[1] + 10) if fixed else 100_000
        h_min = 1e-12 * t_end

        # Working set (compacted as samples finish): local arrays indexed 0..m-1.
        idx = np.arange(b)  # chunk row of each working sample
        t = np.zeros(b)
        y = np.array(y0.T, order="C")  # (n, m), always a copy
        ylo, yhi = y.copy(), y.copy()  # range covered so far, per state and sample
        k = np.zeros(b, dtype=np.int64)  # next stop
        g = np.full(b, int(np.searchsorted(t_eval, 0.0, side="right")), dtype=np.int64)  # next grid point
        out[:, :, : g[0]] = y0[:, :, None]
        filled = np.full(b, t_eval.shape[0], dtype=np.int64)
        nstep = np.zeros(b, dtype=np.int64)
        nrej = np.zeros(b, dtype=np.int64)
        sub = stim

        if fixed:
            h = np.full(b, float(dt))
        else:
            # First step from the size of the derivative (Hairer, Norsett & Wanner, II.4).
            f0, _ = rhs(t, y, params, sub.current(t, np.minimum(stops[:, 0], 1e-9 * t_end)))
            sc = atol_c + rtol * np.abs(y)
            with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
                d0 = np.max(np.abs(y) / sc, axis=0)
                d1 = np.max(np.abs(f0) / sc, axis=0)
                h = np.where((d0 < 1e-5) | (d1 < 1e-5) | ~np.isfinite(d1), 1e-6 * t_end, 0.01 * d0 / d1)
            h = np.minimum(h, self.max_step)
            h = np.where(np.isfinite(h) & (h > 0), h, 1e-6 * t_end)

        while idx.size:
            m = idx.size
            stop = stops[idx, k]
            if fixed:
                snap = stop - t <= h * (1.0 + 1e-9)
            else:
                h = np.minimum(h, self.max_step)
                snap = stop - t <= 1.1 * h  # stretch a step by up to 10 % rather than leave a sliver
            hs = np.where(snap, stop - t, h)  # the step taken
            tn = np.where(snap, stop, t + hs)
            within = t + 0.5 * hs

            # Stage 1: RL1 on the gates, forward Euler on the rest.
            f0, a0 = rhs(t, y, params, sub.current(t, within))
            y1 = f0 * hs
            y1 += y
            if G is not None:
                y1[G] = y[G] + hs * phi1(a0[G] * hs) * f0[G]
            if two_stage:
                # Stage 2: Heun on the rest; on the gates ETD2 with the linear part frozen at
                # the average a over the step and the remainder N = f - a*y linear in time.
                f1, a1 = rhs(tn, y1, params, sub.current(tn, within))
                df = f1 - f0
                y2 = df * 0.5
                y2 += f0
                y2 *= hs
                y2 += y
                if G is not None:
                    ab = a0[G] + a1[G]
                    ab *= 0.5
                    dN = df[G] - ab * (y1[G] - y[G])  # N1 - N0
                    z = ab * hs
                    p1, p2 = phi12(z)
                    p2 *= dN
                    p2 += p1 * f0[G]
                    p2 *= hs
                    p2 += y[G]
                    y2[G] = p2
                # Embedded estimate y2 - y1, in units of the tolerance; on a stiff gate
                # (|a h| >> 1) both relax to the moving quasi-steady state and the difference
                # measures its drift over the step, not an error of y2 (damped as exp(a h)), so
                # it is discounted by 1 + (a h)^2.
                e = y2 - y1
                np.abs(e, out=e)
                if G is not None:
                    e[G] /= 1.0 + z * z
                with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
                    sc = yhi - ylo
                    sc *= rtol
                    sc += atol_c
                    np.maximum(sc, ROUNDING_FLOOR * np.abs(y), out=sc)
                    e /= sc
                    err = np.max(e, axis=0)
                finite = np.isfinite(err)
            else:
                y2 = y1
                finite = np.all(np.isfinite(y2), axis=0)
            if fixed:
                acc = finite
                fail = ~finite
                under = np.zeros(m, dtype=bool)
            else:
                acc = finite & (err <= 1.0)
                fail = ~finite & (hs <= h_min)
                under = finite & ~snap & (hs <= h_min)  # step size underflow (e.g. a blow-up)
                if not finite.all():  # a non-finite derivative at an accepted state: no retry helps
                    nf = np.flatnonzero(~finite)
                    fail[nf] |= ~np.all(np.isfinite(f0[:, nf]), axis=0)
                with np.errstate(divide="ignore", invalid="ignore"):
                    fac = np.where(finite, np.clip(0.9 * err ** -0.5, 0.2, 5.0), 0.25)
                h = np.where(finite, hs, h) * fac  # snapped steps restart from their own size
                acc &= ~fail
                fail |= under

            if acc.any():
                # Output grid points in (t, tn] from the dense output of the accepted steps.
                gnew = np.where(acc, np.searchsorted(t_eval, tn, side="right"), g)
                c = gnew - g
                if c.any():
                    rr = np.repeat(np.arange(m), c)
                    gi = g[rr] + np.arange(rr.size) - np.repeat(np.cumsum(c) - c, c)
                    th = (t_eval[gi] - t[rr]) / hs[rr]
                    if two_stage:
                        vals = self._dense_rl2(rr, th, c, hs, y, f0, df, G, z if G is not None else None,
                                               dN if G is not None else None)
                    else:
                        hh = th * hs[rr]
                        yr, fr = y[:, rr], f0[:, rr]
                        vals = yr + hh * fr
                        if G is not None:
                            vals[G] = yr[G] + hh * phi1(a0[G][:, rr] * hh) * fr[G]
                    # A grid point at the end of the step gets y_{n+1} itself, bit for bit.
                    end = np.flatnonzero(t_eval[gi] == tn[rr])
                    vals[:, end] = y2[:, rr[end]]
                    out[idx[rr], :, gi] = vals.T
                g = gnew
                t = np.where(acc, tn, t)
                np.copyto(y, y2, where=acc)
                np.minimum(ylo, y2, out=ylo, where=acc)
                np.maximum(yhi, y2, out=yhi, where=acc)
                k = k + (acc & snap)
                # Coincident stops (a pulse ending where the next begins): skip those passed.
                while True:
                    more = (k < last) & (stops[idx, np.minimum(k, last)] <= t)
                    if not more.any():
                        break
                    k = k + more
            nstep += acc
            nrej += ~acc & ~fail
            done = acc & snap & (t >= t_end)
            over = ~done & ~fail & (nstep + nrej >= max_steps)
            leave = done | fail | over
            if leave.any():
                status[idx[fail]] = Status.NONFINITE
                status[idx[fail & under]] = Status.SOLVER_ERROR
                status[idx[over]] = Status.MAX_STEPS
                filled[idx[fail | over]] = g[fail | over]
                steps[idx[leave]] = nstep[leave]
                rejected[idx[leave]] = nrej[leave]
                keep = np.flatnonzero(~leave)
                idx, t, k, g, h = (a[keep] for a in (idx, t, k, g, h))
                y, ylo, yhi = (np.ascontiguousarray(a[:, keep]) for a in (y, ylo, yhi))
                nstep, nrej = nstep[keep], nrej[keep]
                if idx.size:
                    sub = sub.select(keep)
        return filled
