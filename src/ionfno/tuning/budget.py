"""Parameter budgets: the study's spectral rule and a total-parameter rule with a tolerance.

Two ways to keep the size of an FNO fixed while its shape changes:

* **Spectral budget** (the reference study's constrained space). The number of modes is derived
  from the width ``H`` and the number of layers ``L`` so that the spectral weights keep the
  budget of the default model (``L = 4, H = 64, K = 16``):

  .. math::

      K = \\left\\lfloor \\frac{S}{2 L H^2} \\right\\rfloor, \\qquad
      S = 4 \\cdot 64^2 \\cdot 16 \\cdot 2 = 524288,

  clipped to ``1 <= K <= n_points // 2 + 1``. The total count then varies with the lifting,
  projection and point-wise layers (about 0.5–0.63 M parameters on the study's grid).

* **Total budget** (``--budget N``). Every configuration has ``|n - N| <= tol * N`` total
  trainable parameters. Given width, layers and block, two free dimensions are solved for: the
  modes ``K`` and the hidden width ``C`` of the lifting and projection MLPs (the same ``C`` for
  both). The count is affine in each of them,

  .. math::

      n(K, C) = n_0 + 2 L H^2 K + (c_\\text{in} + c_\\text{out} + 2 + 2 H) C,

  so for each ``K`` the best ``C`` is one division; the solver prefers the study's ``C = 128``
  and puts the rest of the budget into the modes, moving ``C`` only when ``K`` runs out of range.
  A (width, layers) pair that cannot reach the budget at all is *infeasible*; :func:`project_feasible`
  maps it to the nearest feasible pair (same layers if possible), a deterministic map so that a
  sampler sees a well-defined objective of its parameters.

Every count comes from :func:`ionfno.fno.fno_parameter_count`, the exact closed form of
:class:`ionfno.fno.FNO1d` (tested against ``FNO1d(...).n_parameters()``).

References
----------
Pellegrini, Ghiotto, Centofanti, Pavarino, "Learning high-dimensional ionic model dynamics using
Fourier neural operators", arXiv:2505.14039 (2025), doi:10.48550/arXiv.2505.14039.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "STUDY_SPECTRAL_BUDGET",
    "BudgetSolution",
    "count_parameters",
    "spectral_modes",
    "solve_total_budget",
    "project_feasible",
    "max_modes",
]

# 4 layers x 64^2 x 16 modes x 2 (real and imaginary parts): the spectral weights of the
# study's default model, which its constrained space holds fixed.
STUDY_SPECTRAL_BUDGET = 524288


def max_modes(n_points: int) -> int:
    """The most real-FFT modes a grid of ``n_points`` time points holds: ``n_points // 2 + 1``."""
    if n_points < 1:
        raise ValueError(f"n_points must be >= 1, got {n_points}")
    return n_points // 2 + 1


def count_parameters(
    *,
    n_modes: int,
    hidden_channels: int,
    n_layers: int,
    block: str,
    lifting_channels: int = 128,
    projection_channels: int = 128,
    in_channels: int = 2,
    out_channels: int = 2,
) -> int:
    """Exact number of trainable parameters of the FNO1d with these settings."""
    from ..fno import fno_parameter_count

    return int(
        fno_parameter_count(
            n_modes=n_modes,
            in_channels=in_channels,
            out_channels=out_channels,
            hidden_channels=hidden_channels,
            n_layers=n_layers,
            block=block,
            lifting_channels=lifting_channels,
            projection_channels=projection_channels,
        )
    )


def spectral_modes(
    hidden_channels: int, n_layers: int, n_points: int, spectral_budget: int = STUDY_SPECTRAL_BUDGET
) -> int:
    """Modes that keep ``2 L H^2 K`` at the spectral budget (the study's rule), clipped to the grid.

    Parameters
    ----------
    hidden_channels : int
        Width ``H`` of the Fourier layers.
    n_layers : int
        Number of Fourier layers ``L``.
    n_points : int
        Time points of the training grid (after subsampling); ``K <= n_points // 2 + 1``.
    spectral_budget : int
        ``S`` in the module docstring (default: the study's 524288).
    """
    k = spectral_budget // (2 * n_layers * hidden_channels**2)
    return int(min(max(k, 1), max_modes(n_points)))


@dataclass(frozen=True)
class BudgetSolution:
    """A configuration that meets a total-parameter budget.

    Attributes
    ----------
    n_modes, lifting_channels, projection_channels : int
        The solved free dimensions (lifting and projection widths are equal).
    n_parameters : int
        Exact trainable parameter count.
    relative_error : float
        ``(n_parameters - budget) / budget``.
    """

    n_modes: int
    lifting_channels: int
    projection_channels: int
    n_parameters: int
    relative_error: float


def solve_total_budget(
    budget: int,
    *,
    hidden_channels: int,
    n_layers: int,
    block: str,
    n_points: int,
    in_channels: int = 2,
    out_channels: int = 2,
    tolerance: float = 0.02,
    channels_range: tuple[int, int] = (8, 1024),
    preferred_channels: int = 128,
) -> BudgetSolution | None:
    """Modes and lifting/projection width that put the model within ``tolerance`` of ``budget``.

    Among all feasible ``(K, C)`` with ``1 <= K <= n_points // 2 + 1`` and ``C`` in
    ``channels_range``, return the one whose ``C`` is closest to ``preferred_channels``, then the
    one closest to the budget. ``None`` if no pair is within tolerance.

    Parameters
    ----------
    budget : int
        Target number of trainable parameters ``N`` (> 0).
    hidden_channels, n_layers, block :
        The fixed part of the architecture.
    n_points : int
        Time points of the training grid (bounds the modes).
    in_channels, out_channels : int
        Input channels (current and grid: 2) and output channels (number of states).
    tolerance : float
        Allowed relative deviation, default 0.02 (2 %).
    channels_range : (int, int)
        Inclusive bounds of the lifting/projection width ``C``.
    preferred_channels : int
        The ``C`` to keep when the modes alone can meet the budget (the study's 128).
    """
    if budget <= 0:
        raise ValueError(f"budget must be a positive number of parameters, got {budget}")
    c_lo, c_hi = channels_range
    if not 1 <= c_lo <= c_hi:
        raise ValueError(f"channels_range must satisfy 1 <= low <= high, got {channels_range}")

    def count(k: int, c: int) -> int:
        return count_parameters(
            n_modes=k,
            hidden_channels=hidden_channels,
            n_layers=n_layers,
            block=block,
            lifting_channels=c,
            projection_channels=c,
            in_channels=in_channels,
            out_channels=out_channels,
        )

    # The count is affine in K and in C separately (no K*C term): read the three coefficients
    # off exact evaluations rather than re-deriving the FNO's formula here, search with them,
    # and confirm the chosen pair with one more exact evaluation.
    n11 = count(1, 1)
    slope_k, slope_c = count(2, 1) - n11, count(1, 2) - n11
    n00 = n11 - slope_k - slope_c
    best: tuple[tuple[float, float], int, int] | None = None
    lo, hi = budget * (1 - tolerance), budget * (1 + tolerance)
    for k in range(1, max_modes(n_points) + 1):
        base = n00 + slope_k * k  # the count at C = 0
        if base + slope_c * c_lo > hi:
            break  # more modes only add parameters
        c_star = (budget - base) / slope_c
        candidates = {min(max(c, c_lo), c_hi) for c in (math.floor(c_star), math.ceil(c_star))}
        if c_lo <= preferred_channels <= c_hi:
            candidates.add(preferred_channels)
        for c in candidates:
            n = base + slope_c * c
            if not lo <= n <= hi:
                continue
            key = (abs(c - preferred_channels), abs(n - budget))
            if best is None or key < best[0]:
                best = (key, k, c)
    if best is None:
        return None
    _, k, c = best
    n = count(k, c)
    if not lo <= n <= hi:  # the count is not affine as assumed: a bug in this module or the FNO's
        raise AssertionError(f"budget solver: count({k}, {c}) = {n} is outside [{lo}, {hi}]")
    return BudgetSolution(k, c, c, n, (n - budget) / budget)


def project_feasible(
    budget: int,
    *,
    hidden_channels: int,
    n_layers: int,
    block: str,
    n_points: int,
    widths: list[int] | tuple[int, ...],
    layers: list[int] | tuple[int, ...],
    **solve_kwargs,
) -> tuple[int, int, BudgetSolution]:
    """The feasible (width, layers) nearest to the requested pair, with its budget solution.

    Nearest means: keep ``n_layers`` and take the width closest on a log scale (ties go to the
    smaller width); only if no width works with ``n_layers``, take the closest layer count.

    Returns
    -------
    (hidden_channels, n_layers, BudgetSolution)

    Raises
    ------
    ValueError
        If no (width, layers) pair in ``widths`` x ``layers`` can meet the budget on this grid.
    """

    def solve(h: int, n_l: int) -> BudgetSolution | None:
        return solve_total_budget(
            budget, hidden_channels=h, n_layers=n_l, block=block, n_points=n_points, **solve_kwargs
        )

    exact = solve(hidden_channels, n_layers)
    if exact is not None:
        return hidden_channels, n_layers, exact
    layer_order = sorted(layers, key=lambda n_l: (abs(n_l - n_layers), n_l))
    width_order = sorted(widths, key=lambda h: (abs(math.log(h / hidden_channels)), h))
    for n_l in layer_order:
        for h in width_order:
            sol = solve(h, n_l)
            if sol is not None:
                return h, n_l, sol
    raise ValueError(
        f"No configuration with widths {list(widths)} and layers {list(layers)} (block {block!r}) has "
        f"{budget} parameters within the tolerance on a grid of {n_points} points; choose a budget "
        "between the smallest and largest model the space allows"
    )
