"""The ORd mixture: its threshold claims, and the pipeline with 41 states (short, coarse runs)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("h5py")

from ionfno.data.biomarkers import fires  # noqa: E402
from ionfno.data.generate import generate_dataset, make_config  # noqa: E402
from ionfno.data.inspect import inspect_dataset  # noqa: E402
from ionfno.data.mixtures import load_mixture  # noqa: E402
from ionfno.data.storage import read_split  # noqa: E402


def test_part_corners_sit_on_the_documented_side_of_the_threshold():
    from ionfno.solvers import simulate
    from ionfno.stimulus import pulse

    mix = load_mixture("ord")
    g, sub, high = mix.part("general"), mix.part("sub_short"), mix.part("high")
    # weakest general pulse, strongest short sub-threshold pulse, the study's two facts, high's strongest
    A = np.array([g.amplitude[0], sub.amplitude[1], 80.0, 40.0, high.amplitude[1]])
    T = np.array([g.duration[0], sub.duration[1], 1.0, 0.5, high.duration[0]])
    tr = simulate("ord", pulse(A, T), t_end=60.0, n_points=600, rtol=1e-4)
    assert np.all(tr.status == 0)
    np.testing.assert_array_equal(fires("ord", tr.state("V")), [True, False, True, False, True])


def test_tiny_ord_dataset_round_trip(tmp_path):
    cfg = make_config("ord", n_train=5, n_val=2, n_test=2, t_end=20.0, n_points=100, rtol=1e-3)
    path = generate_dataset(cfg, tmp_path / "ord.h5", progress=False).path
    rep = inspect_dataset(path)
    assert rep.ok, rep.problems
    a = read_split(path, "train")
    assert a["states"].shape == (5, 41, 100) and a["state_names"][0] == "V"
    assert set(a["part"]) <= set(load_mixture("ord").part_names)
    # at rest before any current: the published initial state, to float32 rounding
    from ionfno import get_model

    y0 = np.broadcast_to(get_model("ord").default_state(), (5, 41))
    np.testing.assert_allclose(a["states"][:, :, 0], y0, rtol=1e-6)
