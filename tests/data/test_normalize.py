"""Normalisers: hand-computed statistics, round trips, train-split-only fitting, grid checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ionfno.data.normalize import NORMALIZERS, ChannelNormalizer, PointwiseNormalizer, get_normalizer


@pytest.fixture
def y_train() -> torch.Tensor:
    # 3 samples, 2 channels, 4 time points; channel 1 positive and spanning decades.
    return torch.tensor(
        [
            [[0.0, 1.0, 2.0, 3.0], [1e-4, 1e-3, 1e-2, 1e-1]],
            [[0.0, 3.0, 2.0, 5.0], [2e-4, 1e-3, 3e-2, 1e-1]],
            [[0.0, 5.0, 2.0, 1.0], [4e-4, 1e-3, 5e-2, 1e-1]],
        ],
        dtype=torch.float64,
    )


def test_pointwise_statistics_by_hand(y_train):
    norm = PointwiseNormalizer.fit(y_train)
    # Channel 0, time 1: values 1, 3, 5 -> mean 3, unbiased std 2.
    assert norm.mean[0, 1] == 3.0 and norm.std[0, 1] == 2.0
    assert norm.mean.shape == norm.std.shape == (2, 4)
    z = norm.encode(y_train)
    np.testing.assert_allclose(z[:, 0, 1].numpy(), np.array([-2.0, 0.0, 2.0]) / (2.0 + 1e-5))
    # Constant point (t = 0 of channel 0): std 0 -> divided by eps only, exactly 0 on the data.
    assert norm.std[0, 0] == 0.0 and (z[:, 0, 0] == 0).all()


@pytest.mark.parametrize("cls", [PointwiseNormalizer, ChannelNormalizer])
def test_round_trip(cls, y_train):
    norm = cls.fit(y_train)
    y = y_train + 0.1 * torch.randn_like(y_train)
    torch.testing.assert_close(norm.decode(norm.encode(y)), y, rtol=1e-12, atol=1e-12)


def test_fit_uses_only_given_split(y_train):
    # Fitting on the train split must not change when validation data differ.
    norm = PointwiseNormalizer.fit(y_train)
    val = 100 + y_train
    norm_again = PointwiseNormalizer.fit(y_train)
    torch.testing.assert_close(norm.mean, norm_again.mean)
    z_val = norm.encode(val)  # validation is encoded with train statistics: far from zero mean
    assert z_val[:, 0, 1:].mean() > 10
    assert not torch.allclose(PointwiseNormalizer.fit(torch.cat([y_train, val])).mean, norm.mean)


def test_pointwise_refuses_other_resolution(y_train):
    norm = PointwiseNormalizer.fit(y_train)
    with pytest.raises(
        ValueError, match="fitted on 4 time points and cannot be used on 8.*ChannelNormalizer"
    ):
        norm.encode(torch.zeros(1, 2, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"expected shape \(\.\.\., 2, 4\)"):
        norm.decode(torch.zeros(1, 3, 4, dtype=torch.float64))


def test_channel_statistics_by_hand_and_any_resolution(y_train):
    norm = ChannelNormalizer.fit(y_train)
    c0 = y_train[:, 0].flatten().numpy()
    np.testing.assert_allclose(norm.mean[0].item(), c0.mean())
    np.testing.assert_allclose(norm.std[0].item(), c0.std(ddof=1))
    y_fine = torch.rand(2, 2, 17, dtype=torch.float64)
    expected = (y_fine[:, 0] - c0.mean()) / (c0.std(ddof=1) + 1e-5)
    torch.testing.assert_close(norm.encode(y_fine)[:, 0], expected)


def test_log_channel(y_train):
    norm = ChannelNormalizer.fit(y_train, log_channels=[1])
    logged = np.log(y_train[:, 1].numpy()).flatten()
    np.testing.assert_allclose(norm.mean[1].item(), logged.mean())
    np.testing.assert_allclose(norm.std[1].item(), logged.std(ddof=1))
    z = norm.encode(y_train)
    # A 1 % relative error in the concentration is the same shift at 1e-4 mM and at 1e-1 mM.
    dz = norm.encode(1.01 * y_train) - z
    np.testing.assert_allclose(dz[:, 1].numpy(), np.log(1.01) / (logged.std(ddof=1) + 1e-5))
    torch.testing.assert_close(norm.decode(z), y_train)
    with pytest.raises(ValueError, match=r"log-transformed channels \[1\] must be > 0"):
        norm.encode(-y_train)
    with pytest.raises(ValueError, match=r"channels \[0\] must be > 0"):
        ChannelNormalizer.fit(y_train, log_channels=[0])  # channel 0 has zeros
    with pytest.raises(ValueError, match="not a channel index"):
        ChannelNormalizer.fit(y_train, log_channels=[2])


def test_log_decode_gradient_is_finite(y_train):
    norm = ChannelNormalizer.fit(y_train, log_channels=[1])
    # A large value in the linear channel 0 would overflow exp() if exp saw every channel,
    # and 0 * inf would turn its gradient into NaN.
    z = torch.tensor([[[1000.0] * 4, [0.0] * 4]], dtype=torch.float64, requires_grad=True)
    norm.decode(z).sum().backward()
    assert torch.isfinite(z.grad).all()


@pytest.mark.parametrize("name", sorted(NORMALIZERS))
def test_state_dict_round_trip(name, y_train):
    cls = get_normalizer(name)
    norm = cls.fit(y_train)
    state = norm.state_dict()
    assert set(state) >= {"mean", "std", "eps"}
    rebuilt = cls.from_state_dict(state)
    torch.testing.assert_close(rebuilt.encode(y_train), norm.encode(y_train))


def test_fit_errors():
    with pytest.raises(ValueError, match="at least 2 samples"):
        PointwiseNormalizer.fit(torch.zeros(1, 2, 3))
    with pytest.raises(ValueError, match="non-finite"):
        ChannelNormalizer.fit(torch.tensor([[[0.0, float("nan")]], [[1.0, 2.0]]]))
    with pytest.raises(ValueError, match=r"shape \(n_samples, n_channels, n_time\)"):
        PointwiseNormalizer.fit(torch.zeros(4, 3))
    with pytest.raises(
        ValueError, match=r"Unknown normalizer 'minmax'; expected one of \['channel', 'pointwise'\]"
    ):
        get_normalizer("minmax")
