"""Figures of an evaluation: each function returns a matplotlib ``Figure`` and shows nothing.

The library never calls ``plt.show()`` and never touches the global pyplot state: figures are
built with ``matplotlib.figure.Figure`` directly, so they work with any backend (and without
a display), and the caller saves or embeds them (:func:`figure_to_png`).

Colours: truth in black, prediction in a dashed orange line; constrained / unconstrained
runs in blue / red when both are shown.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "figure_to_png",
    "plot_trajectories",
    "plot_comparison",
    "plot_error_per_variable",
    "plot_error_distributions",
    "plot_loss_curves",
    "plot_tuning_history",
    "plot_biomarker_scatter",
    "plot_ood",
    "plot_restitution",
]

TRUE_STYLE = {"color": "black", "lw": 1.2, "label": "solver"}
PRED_STYLE = {"color": "tab:orange", "lw": 1.2, "ls": "--", "label": "FNO"}
RUN_COLOURS = {"constrained": "tab:blue", "unconstrained": "tab:red", "default": "tab:green"}


def _figure(figsize: tuple[float, float], layout: str | None = "constrained") -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout=layout)


def figure_to_png(fig: Any, dpi: int = 90) -> bytes:
    """PNG bytes of a figure (the figure is left open for the caller)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _label(name: str, unit: str) -> str:
    return f"{name} [{unit}]" if unit and unit != "1" else (f"{name} [-]" if unit == "1" else name)


def plot_trajectories(
    t: np.ndarray,
    true: np.ndarray,
    pred: np.ndarray,
    state_names: Sequence[str],
    state_units: Sequence[str],
    *,
    title: str = "",
    time_unit: str = "ms",
    i_app: np.ndarray | None = None,
    current_unit: str = "",
    max_cols: int = 7,
) -> Any:
    """True and predicted trajectories of every state variable of one sample, small multiples.

    Parameters
    ----------
    t : ndarray, shape (N,)
        Time [time_unit].
    true, pred : ndarray, shape (C, N)
        Solver and surrogate trajectories in model units.
    state_names, state_units : sequence of str, length C
        Panel titles are ``name [unit]``.
    title : str
        Figure title (e.g. the sample's part and stimulus).
    i_app : ndarray, shape (N,), optional
        The applied current, drawn in one extra first panel.
    max_cols : int
        Panels per row (ORd's 41 states fill 6 rows of 7).

    Returns
    -------
    matplotlib.figure.Figure
    """
    true = np.asarray(true)
    pred = np.asarray(pred)
    C = true.shape[0]
    if pred.shape != true.shape or len(state_names) != C or len(state_units) != C:
        raise ValueError(
            f"true/pred (C, N) and C names/units needed; got {true.shape}, {pred.shape}, "
            f"{len(state_names)} names, {len(state_units)} units"
        )
    panels = C + (i_app is not None)
    ncols = min(max_cols, panels)
    nrows = math.ceil(panels / ncols)
    width, height = 2.3 * ncols + 0.5, 1.8 * nrows + 0.6
    # Fixed margins instead of constrained layout: its cost grows quickly with the number of
    # panels (ORd's 42 took seconds), and equal panels need no solver.
    fig = _figure((width, height), layout=None)
    fig.subplots_adjust(
        left=0.55 / width,
        right=1 - 0.1 / width,
        bottom=0.45 / height,
        top=1 - (0.75 if title else 0.35) / height,
        wspace=0.45,
        hspace=0.45,
    )
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True)
    k = 0
    if i_app is not None:
        ax = axes[0, 0]
        ax.plot(t, i_app, color="tab:purple", lw=1.0)
        ax.set_title(_label("I_app", current_unit), fontsize=8)
        k = 1
    for c in range(C):
        ax = axes[(k + c) // ncols, (k + c) % ncols]
        ax.plot(t, true[c], **TRUE_STYLE)
        ax.plot(t, pred[c], **PRED_STYLE)
        ax.set_title(_label(state_names[c], state_units[c]), fontsize=8)
        ax.tick_params(labelsize=6)
        ax.yaxis.get_offset_text().set_fontsize(6)
    for j in range(panels, nrows * ncols):
        axes[j // ncols, j % ncols].set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel(f"t [{time_unit}]", fontsize=7)
    first = axes[k // ncols, k % ncols]
    first.legend(fontsize=6, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_comparison(
    t: np.ndarray,
    solver: np.ndarray,
    surrogate: np.ndarray,
    state_names: Sequence[str],
    state_units: Sequence[str],
    *,
    i_app: np.ndarray | None = None,
    current_unit: str = "",
    time_unit: str = "ms",
    title: str = "",
) -> Any:
    """Chosen states of one input: solver and surrogate (left), point-wise error (right).

    Parameters
    ----------
    t : ndarray, shape (N,)
    solver, surrogate : ndarray, shape (C, N)
        The chosen states in model units (C rows, one per panel row).
    state_names, state_units : sequence of str, length C
    i_app : ndarray, shape (N,), optional
        The applied current, drawn in a first row.

    Returns
    -------
    matplotlib.figure.Figure
    """
    solver, surrogate = np.asarray(solver), np.asarray(surrogate)
    C = solver.shape[0]
    if surrogate.shape != solver.shape or len(state_names) != C or len(state_units) != C:
        raise ValueError(f"solver/surrogate (C, N) and C names/units needed; got {solver.shape}, "
                         f"{surrogate.shape}, {len(state_names)} names, {len(state_units)} units")
    rows = C + (i_app is not None)
    fig = _figure((9.0, 1.9 * rows + 0.6))
    axes = fig.subplots(rows, 2, squeeze=False, sharex=True)
    r = 0
    if i_app is not None:
        axes[0, 0].plot(t, i_app, color="tab:purple", lw=1.0)
        axes[0, 0].set_ylabel(_label("I_app", current_unit), fontsize=8)
        axes[0, 1].set_visible(False)
        r = 1
    for c in range(C):
        left, right = axes[r + c]
        left.plot(t, solver[c], **TRUE_STYLE)
        left.plot(t, surrogate[c], **PRED_STYLE)
        left.set_ylabel(_label(state_names[c], state_units[c]), fontsize=8)
        right.plot(t, surrogate[c] - solver[c], color="tab:red", lw=1.0)
        right.axhline(0.0, color="grey", lw=0.5)
        right.set_ylabel(_label("FNO - solver", state_units[c]), fontsize=8)
    axes[r, 0].legend(fontsize=7, loc="best")
    axes[r, 1].set_title("point-wise error", fontsize=9)
    for ax in axes[-1]:
        ax.set_xlabel(f"t [{time_unit}]", fontsize=8)
    for ax in axes.flat:
        ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_error_per_variable(
    per_variable: Mapping[str, float],
    *,
    study: Mapping[str, float] | None = None,
    ylabel: str = "relative L2 error [%] (normalised space)",
    title: str = "",
) -> Any:
    """Bar chart of one error per variable (fractions, shown in %), with the study's values.

    Parameters
    ----------
    per_variable : mapping of str to float
        Variable name -> error as a fraction (e.g. ``summary["all"]["rel_l2"]["per_variable"]``).
    study : mapping of str to float, optional
        The reference study's values (fractions) for the variables it reports, drawn as dots.
    """
    names = list(per_variable)
    vals = np.array([per_variable[n] for n in names], dtype=float) * 100
    fig = _figure((max(4.0, 0.28 * len(names) + 2.0), 3.2))
    ax = fig.add_subplot()
    x = np.arange(len(names))
    ax.bar(x, vals, color="tab:blue", label="this run")
    if study:
        sx = [i for i, n in enumerate(names) if n in study]
        if sx:
            ax.plot(sx, [study[names[i]] * 100 for i in sx], "o", color="black", label="study")
            ax.legend(fontsize=8)
    ax.set_xticks(x, names, rotation=90 if len(names) > 8 else 0, fontsize=7)
    ax.set_ylabel(ylabel, fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def plot_error_distributions(errors_by_part: Mapping[str, np.ndarray], *, xlabel: str = "") -> Any:
    """Distribution of per-sample errors, one histogram line per dataset part (log-x).

    Parameters
    ----------
    errors_by_part : mapping of str to ndarray (n,)
        Part -> per-sample errors as fractions (``ErrorTable.sample_overall()`` per part);
        shown in %. Non-finite values are left out.
    """
    fig = _figure((6.0, 3.4))
    ax = fig.add_subplot()
    finite_all = np.concatenate(
        [np.asarray(v, float)[np.isfinite(v)] for v in errors_by_part.values()] or [[]]
    )
    finite_all = finite_all[finite_all > 0]
    if finite_all.size == 0:
        ax.text(0.5, 0.5, "no finite errors", ha="center", transform=ax.transAxes)
        return fig
    lo, hi = finite_all.min() * 100, finite_all.max() * 100
    bins = np.geomspace(lo / 1.05, hi * 1.05, 30) if hi > lo else np.array([lo * 0.9, hi * 1.1])
    for part, v in errors_by_part.items():
        v = np.asarray(v, float)
        v = v[np.isfinite(v) & (v > 0)] * 100
        if v.size:
            ax.hist(
                v,
                bins=bins,
                histtype="step",
                lw=1.5,
                label=f"{part} (n={v.size}, median {np.median(v):.2g} %)",
            )
    ax.set_xscale("log")
    ax.set_xlabel(
        xlabel or "per-sample relative L2 error [%] (normalised space, mean over variables)", fontsize=8
    )
    ax.set_ylabel("samples", fontsize=8)
    ax.legend(fontsize=7)
    return fig


def plot_loss_curves(histories: Mapping[str, Sequence[Mapping[str, Any]]], *, title: str = "") -> Any:
    """Training and validation loss per epoch, one colour per run (constrained/unconstrained overlaid).

    Parameters
    ----------
    histories : mapping of str to list of dict
        Run label -> rows with ``epoch``, ``train_loss``, ``val_loss`` (``metrics.csv`` of a run
        folder). Solid lines: validation; dotted: training.
    """
    fig = _figure((6.0, 3.6))
    ax = fig.add_subplot()
    for i, (label, rows) in enumerate(histories.items()):
        if not rows:
            continue
        colour = RUN_COLOURS.get(label, f"C{i}")
        ep = [float(r["epoch"]) for r in rows]
        ax.plot(ep, [float(r["train_loss"]) for r in rows], ls=":", color=colour, label=f"{label} train")
        # Epochs without validation (train.val_every > 1) log NaN; a line through NaN vanishes.
        val = [(e, float(r["val_loss"])) for e, r in zip(ep, rows) if math.isfinite(float(r["val_loss"]))]
        ax.plot([e for e, _ in val], [v for _, v in val], ls="-", color=colour, label=f"{label} validation")
    ax.set_yscale("log")
    ax.set_xlabel("epoch", fontsize=8)
    ax.set_ylabel("relative L2 loss (normalised space)", fontsize=8)
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def plot_tuning_history(studies: Mapping[str, Sequence[tuple[int, float | None]]], *, title: str = "") -> Any:
    """Objective of every tuning trial and the best so far, one colour per search space.

    Parameters
    ----------
    studies : mapping of str to sequence of (trial number, value)
        Search-space label -> trials; ``value`` None (pruned/failed without a value) is skipped.
    """
    fig = _figure((6.0, 3.6))
    ax = fig.add_subplot()
    for i, (label, trials) in enumerate(studies.items()):
        pts = sorted((int(n), float(v)) for n, v in trials if v is not None and np.isfinite(v))
        if not pts:
            continue
        colour = RUN_COLOURS.get(label, f"C{i}")
        n, v = np.array(pts).T
        ax.plot(n, v, "o", ms=3, alpha=0.5, color=colour, label=f"{label} trials")
        ax.step(n, np.minimum.accumulate(v), where="post", color=colour, label=f"{label} best so far")
    ax.set_yscale("log")
    ax.set_xlabel("trial", fontsize=8)
    ax.set_ylabel("objective (validation relative L2)", fontsize=8)
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def plot_biomarker_scatter(true: Any, pred: Any, *, time_unit: str = "ms", v_unit: str = "mV") -> Any:
    """Predicted against true biomarkers (peak, upstroke time, APD50, APD90) of firing samples.

    Parameters
    ----------
    true, pred : ionfno.evaluation.biomarkers.Biomarkers
    """
    fig = _figure((9.0, 2.6))
    axes = fig.subplots(1, 4)
    both = np.asarray(true.fires) & np.asarray(pred.fires)
    for ax, (name, unit) in zip(
        axes,
        [("v_peak", v_unit), ("t_upstroke", time_unit), ("apd50", time_unit), ("apd90", time_unit)],
        strict=True,
    ):
        a, b = getattr(true, name)[both], getattr(pred, name)[both]
        ok = np.isfinite(a) & np.isfinite(b)
        ax.plot(a[ok], b[ok], ".", ms=3)
        if ok.any():
            lo, hi = min(a[ok].min(), b[ok].min()), max(a[ok].max(), b[ok].max())
            ax.plot([lo, hi], [lo, hi], color="gray", lw=0.8)
        ax.set_title(f"{name} [{unit}] (n={int(ok.sum())})", fontsize=8)
        ax.set_xlabel("solver", fontsize=7)
        ax.set_ylabel("FNO", fontsize=7)
        ax.tick_params(labelsize=6)
    return fig


def plot_ood(
    t: np.ndarray,
    cases: Mapping[str, Mapping[str, np.ndarray]],
    *,
    v_name: str = "V",
    v_unit: str = "mV",
    time_unit: str = "ms",
) -> Any:
    """Membrane potential under out-of-distribution stimuli: one column per kind of stimulus.

    Parameters
    ----------
    t : ndarray, shape (N,)
    cases : mapping of str to dict
        Kind -> ``{"i_app": (B, N), "true": (B, N), "pred": (B, N)}`` (V of each sample).
    """
    kinds = list(cases)
    fig = _figure((3.2 * max(1, len(kinds)), 4.2))
    axes = fig.subplots(2, max(1, len(kinds)), squeeze=False, sharex=True)
    for j, kind in enumerate(kinds):
        c = cases[kind]
        for b in range(np.asarray(c["true"]).shape[0]):
            colour = f"C{b % 10}"
            axes[0, j].plot(t, c["i_app"][b], color=colour, lw=0.8)
            axes[1, j].plot(t, c["true"][b], color=colour, lw=1.2)
            axes[1, j].plot(t, c["pred"][b], color=colour, lw=1.0, ls="--")
        axes[0, j].set_title(kind, fontsize=9)
        axes[1, j].set_xlabel(f"t [{time_unit}]", fontsize=7)
        for ax in axes[:, j]:
            ax.tick_params(labelsize=6)
    axes[0, 0].set_ylabel("I_app", fontsize=7)
    axes[1, 0].set_ylabel(f"{v_name} [{v_unit}] (solid: solver, dashed: FNO)", fontsize=7)
    return fig


def plot_restitution(curves: Mapping[str, Mapping[str, Any]], *, time_unit: str = "ms") -> Any:
    """S1-S2 restitution: APD90 of the S2 beat against the coupling interval, solver and surrogates.

    Parameters
    ----------
    curves : mapping of str to dict
        Label -> :func:`ionfno.evaluation.heldout.restitution_curve` result. The solver's
        curve is drawn once (from the first), each surrogate's as markers; an S2 that does not
        fire (or not repolarise) in the window is drawn at APD90 = 0 as an open marker.
    """
    fig = _figure((5.2, 3.6))
    ax = fig.subplots()
    first = next(iter(curves.values()))
    ci = np.asarray(first["coupling"])
    at = np.asarray(first["apd90_true"], dtype=float)
    ax.plot(ci, np.where(np.isfinite(at), at, np.nan), **TRUE_STYLE, marker="o", ms=3)
    fails = ~np.isfinite(at)
    if fails.any():
        ax.plot(ci[fails], np.zeros(fails.sum()), "o", mfc="none", color="black", ms=5,
                label="solver: no S2 AP")
    for j, (label, c) in enumerate(curves.items()):
        ap = np.asarray(c["apd90_pred"], dtype=float)
        colour = f"C{(j + 1) % 10}"
        ax.plot(ci, np.where(np.isfinite(ap), ap, np.nan), ls="--", marker="s", ms=3, color=colour,
                label=f"{label} (APD90 error {c['apd90_mae']:.3g} {time_unit})")
        miss = ~np.isfinite(ap)
        if miss.any():
            ax.plot(ci[miss], np.zeros(miss.sum()), "s", mfc="none", color=colour, ms=5)
    ax.set_xlabel(f"S1-S2 coupling interval [{time_unit}]")
    ax.set_ylabel(f"APD90 of the S2 beat [{time_unit}]")
    ax.legend(fontsize=7)
    return fig
