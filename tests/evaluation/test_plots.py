"""Figures: built without a display, one panel per state with its name and unit."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ionfno.evaluation import plots
from ionfno.evaluation.biomarkers import compute_biomarkers


def test_trajectories_have_one_titled_panel_per_state_ord_size():
    names = [f"s{i}" for i in range(41)]
    units = ["mV"] + ["mM"] * 20 + ["1"] * 20
    t = np.linspace(0, 1000, 50)
    y = np.random.default_rng(0).standard_normal((41, 50))
    fig = plots.plot_trajectories(t, y, y + 0.1, names, units, i_app=np.zeros(50), current_unit="µA/µF")
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert len(titles) == 42
    assert (
        titles[0] == "I_app [µA/µF]"
        and titles[1] == "s0 [mV]"
        and titles[2] == "s1 [mM]"
        and titles[-1] == "s40 [-]"
    )
    assert all(len(ax.lines) == 2 for ax in fig.axes[1:42])  # truth and prediction in every state panel


def test_other_figures_build():
    t = np.linspace(0, 100, 100)
    v = np.where((t > 10) & (t < 40), 1.0, 0.0)[None, :]
    bm = compute_biomarkers(v, t, threshold=0.5)
    figs = [
        plots.plot_error_per_variable({"V": 0.01, "w": 0.02}, study={"V": 0.0121}),
        plots.plot_error_distributions({"a": np.array([0.01, 0.02, np.nan]), "b": np.array([0.1])}),
        plots.plot_error_distributions({"a": np.array([np.nan])}),
        plots.plot_loss_curves({"constrained": [{"epoch": 1, "train_loss": 1.0, "val_loss": 2.0}]}),
        plots.plot_tuning_history({"unconstrained": [(0, 1.0), (1, 0.5), (2, None)]}),
        plots.plot_biomarker_scatter(bm, bm),
        plots.plot_ood(t, {"two_pulses": {"i_app": v, "true": v, "pred": v}}),
    ]
    assert all(isinstance(f, Figure) for f in figs)
    # The tuning history's best-so-far line is the running minimum.
    line = [ln for ln in figs[4].axes[0].lines if "best" in ln.get_label()][0]
    np.testing.assert_allclose(line.get_ydata(), [1.0, 0.5])
