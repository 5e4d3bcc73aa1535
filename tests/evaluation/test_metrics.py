"""Metrics against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from ionfno.evaluation.metrics import (
    NORMALISER_EPS,
    compute_errors,
    max_abs_error,
    normalise,
    relative_h1,
    relative_lp,
    rmse,
    variable_range,
)


def test_relative_lp_hand_values():
    true = np.array([[[3.0, 4.0]]])
    pred = np.array([[[0.0, 4.0]]])
    np.testing.assert_allclose(relative_lp(pred, true, 2), [[3.0 / 5.0]])
    np.testing.assert_allclose(relative_lp(pred, true, 1), [[3.0 / 7.0]])


def test_relative_lp_zero_reference_is_nan_not_inf():
    true = np.zeros((1, 2, 4))
    true[0, 1] = 1.0
    pred = np.ones((1, 2, 4))
    out = relative_lp(pred, true)
    assert np.isnan(out[0, 0]) and out[0, 1] == 0.0


def test_rmse_and_max_abs_hand_values():
    true = np.zeros((1, 1, 4))
    pred = np.array([[[1.0, -1.0, 1.0, -3.0]]])
    np.testing.assert_allclose(rmse(pred, true), [[np.sqrt((1 + 1 + 1 + 9) / 4)]])
    np.testing.assert_allclose(max_abs_error(pred, true), [[3.0]])


def test_relative_h1_linear_truth_constant_error():
    # u = 2 s on s = (0, 0.5, 1): u' = 2 exactly with central/one-sided differences;
    # error = 0.5 (constant), so e'= 0. mean(u^2) = 4 * 5/12, mean(u'^2) = 4.
    s = np.linspace(0, 1, 3)
    true = (2 * s)[None, None, :]
    pred = true + 0.5
    expected = np.sqrt(0.25 / (4 * 5 / 12 + 4))
    np.testing.assert_allclose(relative_h1(pred, true), [[expected]], rtol=1e-12)


def test_relative_h1_sees_derivative_errors_that_l2_barely_sees():
    s = np.linspace(0, 1, 201)
    true = np.ones((1, 1, 201))
    pred = true + 0.01 * np.sin(2 * np.pi * 40 * s)[None, None, :]
    assert relative_h1(pred, true)[0, 0] > 10 * relative_lp(pred, true)[0, 0]


def test_normalise_and_study_metric_in_normalised_space():
    # std + eps = 1 exactly, so z = x - mean; a shift of the mean changes the relative error.
    mean = np.full((1, 2), 0.5)
    std = np.full((1, 2), 1.0 - NORMALISER_EPS)
    true = np.ones((1, 1, 2))
    pred = 2 * np.ones((1, 1, 2))
    np.testing.assert_allclose(normalise(true, mean, std), 0.5 * np.ones((1, 1, 2)))
    table = compute_errors(pred, true, mean=mean, std=std, state_names=["V"])
    np.testing.assert_allclose(table.per_sample["rel_l2"], [[2.0]])  # physical would be 1.0
    with pytest.raises(ValueError, match="mean and std must have shape"):
        normalise(true, np.zeros((2, 2)), std)


def _table_with_known_errors():
    # Two samples, two variables, mean 0 and std + eps = 1, so normalised = physical.
    n = 4
    true = np.ones((2, 2, n))
    rel = np.array([[0.1, 0.3], [0.2, 0.0]])  # wanted rel L2 per sample and variable
    pred = true * (1 + rel[:, :, None])
    mean = np.zeros((2, n))
    std = np.full((2, n), 1.0 - NORMALISER_EPS)
    true[1, 1, 0] = 3.0  # widen the range of variable 1 ...
    pred[1, 1, 0] = 3.0  # ... without changing its error
    t = compute_errors(
        pred, true, mean=mean, std=std, state_names=["V", "w"], state_units=["mV", "1"], parts=["a", "b"]
    )
    return t, rel


def test_compute_errors_averaging_order_and_parts():
    table, rel = _table_with_known_errors()
    np.testing.assert_allclose(table.per_sample["rel_l2"][0], rel[0])
    np.testing.assert_allclose(table.per_sample["rel_l2"][1, 0], 0.2)
    s = table.summary()
    assert list(s) == ["all", "a", "b"]
    np.testing.assert_allclose(s["all"]["rel_l2"]["per_variable"]["V"], 0.15)
    np.testing.assert_allclose(s["all"]["rel_l2"]["overall"], (0.15 + 0.15) / 2)
    np.testing.assert_allclose(s["a"]["rel_l2"]["overall"], 0.2)
    np.testing.assert_allclose(s["b"]["rel_l2"]["overall"], 0.1)
    assert s["a"]["n"] == 1 and s["all"]["n"] == 2
    assert s["all"]["rmse"]["overall"] is None  # units differ between variables


def test_range_relative_errors():
    table, _ = _table_with_known_errors()
    np.testing.assert_allclose(table.ranges, [0.0, 2.0])  # V constant 1 -> range 0
    assert np.all(np.isnan(table.per_sample["rmse_over_range"][:, 0]))
    np.testing.assert_allclose(table.per_sample["rmse_over_range"][0, 1], 0.3 / 2.0)
    np.testing.assert_allclose(table.per_sample["max_abs_over_range"][0, 1], 0.3 / 2.0)
    assert table.summary()["all"]["rmse_over_range"]["n_nan"] == 2
    np.testing.assert_allclose(variable_range(np.array([[[1.0, -2.0]], [[5.0, 0.0]]])), [7.0])


def test_worst_samples_and_rows():
    table, _ = _table_with_known_errors()
    np.testing.assert_array_equal(table.worst(2), [0, 1])  # sample 0: 0.2, sample 1: 0.1
    rows = table.rows()
    v = [r for r in rows if r["part"] == "all" and r["metric"] == "rmse" and r["variable"] == "V"]
    assert len(v) == 1 and v[0]["unit"] == "mV"
    np.testing.assert_allclose(v[0]["value"], 0.15)


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="same shape"):
        relative_lp(np.zeros((1, 1, 3)), np.zeros((1, 1, 4)))
    with pytest.raises(ValueError, match="state names"):
        compute_errors(
            np.zeros((1, 2, 3)),
            np.ones((1, 2, 3)),
            mean=np.zeros((2, 3)),
            std=np.ones((2, 3)),
            state_names=["V"],
        )
