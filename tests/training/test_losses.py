"""Relative Lp / H1 losses against hand calculations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ionfno.training.losses import (
    LOSSES,
    get_loss,
    per_variable_relative_lp,
    relative_h1,
    relative_lp,
    time_derivative,
)

# Two samples, two variables, three time points.
TRUE = torch.tensor(
    [[[3.0, 0.0, 4.0], [1.0, 1.0, 1.0]], [[0.0, 2.0, 0.0], [1.0, 2.0, 2.0]]], dtype=torch.float64
)
PRED = torch.tensor(
    [[[3.0, 1.0, 4.0], [1.0, 1.0, 1.0]], [[0.0, 2.0, 1.0], [2.0, 2.0, 2.0]]], dtype=torch.float64
)
# Hand: ||e|| / ||y|| per (sample, variable):
#   s0 v0: 1 / 5;  s0 v1: 0 / sqrt(3) = 0;  s1 v0: 1 / 2;  s1 v1: 1 / 3.
L2_BY_HAND = np.array([[1 / 5, 0.0], [1 / 2, 1 / 3]])
#   L1: s0 v0 1/7, s0 v1 0, s1 v0 1/2, s1 v1 1/5.
L1_BY_HAND = np.array([[1 / 7, 0.0], [1 / 2, 1 / 5]])


def test_relative_l2_by_hand():
    np.testing.assert_allclose(relative_lp(PRED, TRUE, reduction="none").numpy(), L2_BY_HAND)
    # Study metric: mean over variables, then over samples: ((0.2 + 0)/2 + (0.5 + 1/3)/2) / 2.
    expected = ((0.2 + 0.0) / 2 + (0.5 + 1 / 3) / 2) / 2
    assert relative_lp(PRED, TRUE).item() == pytest.approx(expected, rel=1e-14)
    assert relative_lp(PRED, TRUE, reduction="sum").item() == pytest.approx(2 * expected, rel=1e-14)


def test_relative_l1_by_hand():
    np.testing.assert_allclose(relative_lp(PRED, TRUE, p=1, reduction="none").numpy(), L1_BY_HAND)
    np.testing.assert_allclose(get_loss("l1")(PRED, TRUE).item(), L1_BY_HAND.mean(axis=1).mean())


def test_per_variable():
    np.testing.assert_allclose(per_variable_relative_lp(PRED, TRUE).numpy(), L2_BY_HAND.mean(axis=0))
    assert per_variable_relative_lp(PRED, TRUE).mean().item() == pytest.approx(relative_lp(PRED, TRUE).item())


def test_scale_invariance_and_zero_target():
    torch.testing.assert_close(relative_lp(7 * PRED, 7 * TRUE), relative_lp(PRED, TRUE))
    zero = torch.zeros(1, 1, 3, dtype=torch.float64)
    pred = torch.tensor([[[1e-9, 0.0, 0.0]]], dtype=torch.float64)
    err = relative_lp(pred, zero, eps=1e-8)
    assert torch.isfinite(err) and err.item() == pytest.approx(0.1)  # 1e-9 / eps
    assert relative_lp(zero, zero).item() == 0.0


def test_time_derivative_by_hand():
    y = torch.tensor([0.0, 1.0, 4.0, 9.0], dtype=torch.float64)
    # spacing 0.5: one-sided (1-0)/0.5 = 2, central (4-0)/1 = 4, (9-1)/1 = 8, one-sided (9-4)/0.5 = 10
    np.testing.assert_allclose(time_derivative(y, dt=0.5).numpy(), [2.0, 4.0, 8.0, 10.0])
    # default spacing 1/(n-1) = 1/3
    np.testing.assert_allclose(time_derivative(y).numpy(), 3 * np.array([1.0, 2.0, 4.0, 5.0]))


def test_relative_h1_by_hand():
    true = torch.tensor([[[0.0, 1.0, 0.0]]], dtype=torch.float64)
    pred = torch.tensor([[[0.0, 1.0, 1.0]]], dtype=torch.float64)
    # dt = 1: y' = [1, 0, -1]; e = [0, 0, 1], e' = [0, 0.5, 1].
    num = 1.0 + (0.25 + 1.0)
    den = 1.0 + (1.0 + 1.0)
    assert relative_h1(pred, true, dt=1.0).item() == pytest.approx(math.sqrt(num / den), rel=1e-14)
    # With a fine dt the derivative term dominates: -> ||e'|| / ||y'|| = sqrt(1.25 / 2).
    assert relative_h1(pred, true, dt=1e-4).item() == pytest.approx(math.sqrt(1.25 / 2), rel=1e-6)


def test_h1_of_constant_shift_equals_l2():
    # A constant error has zero derivative; for a constant target too, H1 reduces to L2.
    true = torch.full((2, 3, 10), 2.0, dtype=torch.float64)
    pred = true + 0.1
    torch.testing.assert_close(relative_h1(pred, true), relative_lp(pred, true))


def test_registry_and_errors():
    assert set(LOSSES) == {"l1", "l2", "h1"}
    for name, fn in LOSSES.items():
        assert fn(TRUE, TRUE).item() == 0.0, name
        assert fn(PRED, TRUE, reduction="none").shape == (2, 2)
    with pytest.raises(ValueError, match=r"Unknown loss 'mse'; expected one of \['h1', 'l1', 'l2'\]"):
        get_loss("mse")
    with pytest.raises(ValueError, match="same shape"):
        relative_lp(PRED, TRUE[:, :1])
    with pytest.raises(ValueError, match="Unknown reduction"):
        relative_lp(PRED, TRUE, reduction="avg")
    with pytest.raises(ValueError, match="p must be >= 1"):
        relative_lp(PRED, TRUE, p=0.5)


def test_gradient_is_finite_at_exact_prediction():
    # vector_norm's gradient at a zero error is defined (0) -- a training step on a perfect batch
    # must not produce NaN.
    pred = TRUE.clone().requires_grad_(True)
    relative_lp(pred, TRUE).backward()
    assert torch.isfinite(pred.grad).all()
