"""ChunkedRollout: exact start, causality at the chunk scale, calibration, state-dict round trip."""

import pytest
import torch

from ionfno.fno import ChunkedRollout, FNO1d

S, CHUNK, N = 2, 8, 43  # 43 points: 5 full steps and a partial one (42 = 5 x 8 + 2)


def _model(seed=0):
    torch.manual_seed(seed)
    fno = FNO1d(n_modes=4, in_channels=2 + S, out_channels=S, hidden_channels=8, n_layers=2,
                lifting_channels=8, projection_channels=8)
    return ChunkedRollout(fno, S, CHUNK)


def _stats(seed=1):
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(S, N, generator=g)
    std = torch.rand(S, N, generator=g) + 0.5
    mean[:, 0] = torch.tensor([-1.0, 0.25])
    std[:, 0] = 0.0  # every sample starts at rest
    return mean, std


def _calibrated(seed=0):
    m = _model(seed)
    m.calibrate(*_stats(), eps=1e-5)
    return m


def test_shapes_exact_start_and_output_space():
    m = _calibrated()
    x = torch.randn(3, 2, N)
    z = m(x)
    assert z.shape == (3, S, N)
    y = m.trajectory(x)
    assert torch.equal(y[:, :, 0], m.y0.expand(3, S))  # exactly the initial state
    assert torch.allclose(z, (y - m.out_mean) / m.out_scale)
    # The grid channel is ignored: the rollout keeps its own clock.
    x2 = x.clone()
    x2[:, 1] = torch.randn(3, N)
    assert torch.equal(m(x2), z)


def test_causal_at_the_chunk_scale():
    # Step k reads the current at points k*chunk .. (k+1)*chunk and writes the states up to
    # (k+1)*chunk, so a change from point m*chunk + 1 on leaves points 0 .. m*chunk untouched.
    m = _calibrated()
    x = torch.randn(2, 2, N)
    for steps in (1, 3):
        cut = steps * CHUNK
        x2 = x.clone()
        x2[:, 0, cut + 1:] += torch.randn(2, N - cut - 1)
        y, y2 = m.trajectory(x), m.trajectory(x2)
        assert torch.equal(y[:, :, :cut + 1], y2[:, :, :cut + 1])
        assert (y[:, :, cut + 1:] - y2[:, :, cut + 1:]).abs().max() > 1e-4


def _assert_no_unused_parameters(m):
    # Rounding noise is not a gradient: every trainable parameter's must be within 1e-4 of the
    # largest (the output bias, which cancels in f - f(0), had about 1e-8 of it before it was frozen).
    grads = {k: p.grad.abs().max().item() for k, p in m.named_parameters() if p.requires_grad}
    top = max(grads.values())
    assert all(g > 1e-4 * top for g in grads.values()), {k: g / top for k, g in grads.items()}
    frozen = [k for k, p in m.named_parameters() if not p.requires_grad]
    assert frozen == ["chunk_map.projection.fc2.bias"]


def test_every_parameter_gets_a_gradient_and_the_cancelled_bias_is_frozen():
    m = _calibrated()
    x = torch.randn(2, 2, N)
    m(x).pow(2).mean().backward()
    _assert_no_unused_parameters(m)
    # Why it is frozen: it cannot change the output.
    with torch.no_grad():
        z = m(x)
        m.chunk_map.projection.fc2.bias += 3.0
        assert torch.allclose(m(x), z, atol=1e-5)


def test_calibration_channel_statistics_match_the_data():
    # Channel mean/std derived from the point-wise ones equal those over all samples and times.
    g = torch.Generator().manual_seed(3)
    scale, shift = torch.tensor([1.0, 3.0])[:, None], torch.tensor([2.0, -1.0])[:, None]
    y = torch.randn(500, S, N, generator=g) * scale + shift
    y[:, :, 0] = torch.tensor([0.5, 0.0])
    m = _model()
    m.calibrate(y.mean(0), y.std(0, unbiased=False), eps=1e-5)
    assert torch.allclose(m.state_mean, y.mean(dim=(0, 2)), atol=1e-5)
    assert torch.allclose(m.state_std, y.std(dim=(0, 2), unbiased=False), rtol=1e-4)
    assert torch.equal(m.y0, torch.tensor([0.5, 0.0]))


def test_calibration_refuses_samples_that_start_apart():
    mean, std = _stats()
    std[1, 0] = 0.1
    with pytest.raises(ValueError, match="same state"):
        _model().calibrate(mean, std, eps=1e-5)
    with pytest.raises(ValueError, match=r"shape \(2, N\)"):
        _model().calibrate(mean[:1], std[:1], eps=1e-5)


def test_state_dict_round_trip_into_an_uncalibrated_model():
    m = _calibrated(seed=0)
    fresh = _model(seed=5)
    with pytest.raises(RuntimeError, match="calibrate"):
        fresh(torch.randn(1, 2, N))
    fresh.load_state_dict(m.state_dict())
    x = torch.randn(2, 2, N)
    assert torch.equal(fresh(x), m(x))
    with pytest.raises(ValueError, match="43 time points"):
        fresh(torch.randn(1, 2, N + 8))


def test_weights_load_into_another_chunk_length_and_old_checkpoints_still_load():
    m = _calibrated(seed=0)
    sd = m.state_dict()
    assert "tau" not in sd  # derived from the chunk length, not a weight
    torch.manual_seed(5)
    other = ChunkedRollout(FNO1d(n_modes=4, in_channels=2 + S, out_channels=S, hidden_channels=8, n_layers=2,
                                 lifting_channels=8, projection_channels=8), S, CHUNK + 3)
    other.load_state_dict(sd)
    assert other.chunk == CHUNK + 3 and other.tau.shape == (CHUNK + 4,)
    x = torch.randn(2, 2, N)
    y, y_other = m(x), other(x)
    assert torch.equal(y[..., 0], y_other[..., 0])  # same start, same weights
    assert not torch.allclose(y, y_other)  # the chunk grid differs, so the rollout does
    # A checkpoint from before tau stopped being saved (with another chunk's tau) loads strictly.
    old = dict(sd, tau=torch.linspace(0, 1, 27))
    other.load_state_dict(old)
    assert torch.equal(other.tau, torch.linspace(0, 1, CHUNK + 4))
    with pytest.raises(RuntimeError, match="Unexpected"):
        other.load_state_dict(dict(sd, bogus=torch.zeros(1)))


def test_chunk_must_be_positive():
    with pytest.raises(ValueError, match="chunk must be >= 1"):
        ChunkedRollout(torch.nn.Identity(), S, 0)


def test_teacher_forced_on_its_own_rollout_is_the_rollout():
    # Started from the rollout's own states at the rollout's chunk starts (offset 0), the
    # batched teacher-forced pass must give the rollout back: same chunks, same inputs.
    m = _calibrated()
    x = torch.randn(3, 2, N)
    with torch.no_grad():
        z = m(x)
        assert torch.allclose(m(x, teacher=z, offset=0), z, atol=1e-5)
        # Another chunk grid starts the chunk map from other points: not the rollout any more.
        assert (m(x, teacher=z, offset=3) - z).abs().max() > 1e-4


@pytest.mark.parametrize("offset", [0, 1, 5, CHUNK - 1, CHUNK + 2])
def test_teacher_forced_chunks_start_from_the_truth(offset):
    m = _calibrated()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 2, N, generator=g)
    y_true = torch.randn(2, S, N, generator=g)
    y = m.teacher_forced(x, y_true, offset)
    assert y.shape == (2, S, N)
    assert torch.equal(y[:, :, 0], y_true[:, :, 0])
    first = offset % CHUNK or CHUNK
    starts = [0, *range(first, N - 1, CHUNK)]
    ends = [*starts[1:], N - 1]
    for s, e in zip(starts, ends, strict=True):
        # Each chunk is one step from the true state at its start, over its own current.
        cur = x[:, 0, s:s + CHUNK + 1]
        if cur.shape[1] < CHUNK + 1:
            cur = torch.cat([cur, cur[:, -1:].expand(2, CHUNK + 1 - cur.shape[1])], dim=1)
        want = m.step(cur, y_true[:, :, s])
        assert torch.allclose(y[:, :, s + 1:e + 1], want[:, :, 1:e - s + 1], atol=1e-5)
    # A point depends on the truth only through its chunk's start.
    j = starts[1] + 1
    y2 = y_true.clone()
    y2[:, :, j] += 10.0
    assert torch.equal(m.teacher_forced(x, y2, offset), y)


def test_teacher_forced_trains_every_parameter():
    m = _calibrated()
    x = torch.randn(2, 2, N)
    target = torch.randn(2, S, N)
    ((m(x, teacher=target, offset=2) - target) ** 2).mean().backward()
    _assert_no_unused_parameters(m)
