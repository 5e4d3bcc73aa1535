"""HyperNOs state dicts load into FNO1d and give the FNO the equations define.

The reference below is written from the equations of the 1-D FNO (Li et al. 2021; the
reference study's lifting/projection MLPs, right zero padding, Classic and Zongyi blocks), in
the authors' layout (time-major, grid channel first), with the Fourier transform as explicit
sums; it shares no code with ionfno's FNO1d or with HyperNOs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import erf

from ionfno.fno import FNO1d, from_hypernos_state_dict, hypernos_architecture, map_hypernos_state_dict
from ionfno.training import load_preset


def hypernos_layout_state(*, width, n_layers, modes, out, block, lifting=12, projection=10, seed=0):
    """A random state dict with the keys and shapes of a HyperNOs 1-D FNO (one input + grid)."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64) / np.sqrt(
            shape[-1] if len(shape) > 1 else 4
        )

    sd = {
        "p.mlp1.weight": r(lifting, 2),
        "p.mlp1.bias": r(lifting),
        "p.mlp2.weight": r(width, lifting),
        "p.mlp2.bias": r(width),
    }
    for i in range(n_layers):
        sd[f"ws.{i}.weight"] = r(width, width, 1)[..., :1]
        sd[f"ws.{i}.bias"] = r(width)
        if block == "zongyi":
            for m in ("mlp1", "mlp2"):
                sd[f"mlps.{i}.{m}.weight"] = r(width, width, 1)[..., :1]
                sd[f"mlps.{i}.{m}.bias"] = r(width)
        sd[f"integrals.{i}.weights"] = torch.complex(r(width, width, modes), r(width, width, modes)) / width
    sd |= {
        "q.mlp1.weight": r(projection, width),
        "q.mlp1.bias": r(projection),
        "q.mlp2.weight": r(out, projection),
        "q.mlp2.bias": r(out),
    }
    return sd


def gelu(x):
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def spectral(v, w):
    """Truncated Fourier layer: y_n = (1/N) sum_k c_k Re(Y_k e^{2 pi i k n / N}), Y_k = W_k^T X_k.

    v: (B, N, C) real; w: (C_in, C_out, K) complex. X_k = sum_n v_n e^{-2 pi i k n / N};
    c_0 = 1, c_{N/2} = 1 for even N, else 2; the imaginary parts of modes 0 and N/2 drop out.
    """
    n = v.shape[1]
    k = np.arange(w.shape[2])
    phase = np.exp(-2j * np.pi * np.outer(np.arange(n), k) / n)  # (N, K)
    x_hat = np.einsum("bnc,nk->bkc", v, phase)  # (B, K, C_in)
    y_hat = np.einsum("bki,iok->bko", x_hat, w)  # (B, K, C_out)
    c = np.where((k == 0) | (2 * k == n), 1.0, 2.0)
    y_hat = np.where(((k == 0) | (2 * k == n))[None, :, None], y_hat.real + 0j, y_hat)
    return np.einsum("bko,nk->bno", c[None, :, None] * y_hat, np.conj(phase)).real / n


def reference_forward(sd, a, *, block, padding, act=gelu):
    """The study's FNO on inputs a (B, N), in the authors' layout; returns (B, N, out)."""
    s = {k: v.numpy() for k, v in sd.items()}
    b, n = a.shape
    z = np.stack([np.broadcast_to(np.linspace(0.0, 1.0, n), (b, n)), a], axis=-1)  # (B, N, 2): grid first

    def dense(x, name):
        w = s[f"{name}.weight"]
        return x @ (w[..., 0] if w.ndim == 3 else w).T + s[f"{name}.bias"]

    v = dense(act(dense(z, "p.mlp1")), "p.mlp2")
    v = np.concatenate([v, np.zeros((b, padding, v.shape[2]))], axis=1)
    n_layers = sum(k.startswith("integrals.") for k in s)
    for i in range(n_layers):
        kv = spectral(v, s[f"integrals.{i}.weights"])
        if block == "zongyi":
            kv = dense(act(dense(kv, f"mlps.{i}.mlp1")), f"mlps.{i}.mlp2")
        v = kv + dense(v, f"ws.{i}")
        if i < n_layers - 1:
            v = act(v)
    v = v[:, :n]
    return dense(act(dense(v, "q.mlp1")), "q.mlp2")


@pytest.mark.parametrize(
    ("block", "n_time", "padding", "modes"),
    [("classic", 37, 3, 21), ("zongyi", 30, 0, 5), ("zongyi", 25, 5, 7)],
    ids=["classic-nyquist-mode", "zongyi-no-padding", "zongyi-padded"],
)
def test_mapped_weights_give_the_equations_output(block, n_time, padding, modes):
    sd = hypernos_layout_state(width=6, n_layers=3, modes=modes, out=3, block=block)
    model = from_hypernos_state_dict(sd, activation="gelu", padding=padding, block=block, spectral="fft")
    a = np.random.default_rng(1).normal(size=(4, n_time))
    grid = np.broadcast_to(np.linspace(0.0, 1.0, n_time), a.shape)
    x = torch.as_tensor(np.stack([a, grid], axis=1))  # ours: (B, [I, grid], N)
    with torch.no_grad():
        ours = model(x).numpy()  # (B, out, N)
    want = reference_forward(sd, a, block=block, padding=padding).transpose(0, 2, 1)
    np.testing.assert_allclose(ours, want, rtol=1e-10, atol=1e-12)
    model.spectral = "dft"  # the other implementation of the same operator
    for conv in model.convs:
        conv.implementation = "dft"
    with torch.no_grad():
        np.testing.assert_allclose(model(x).numpy(), want, rtol=1e-9, atol=1e-11)


def test_the_published_constrained_layouts_are_the_study_presets():
    # Shapes of the authors' published FHN and HH weights (stiffODE_streamlit models/).
    for preset, out, kw in (
        ("fhn-constrained", 2, dict(width=64, n_layers=5, modes=12, block="zongyi")),
        ("hh-constrained", 4, dict(width=96, n_layers=5, modes=5, block="zongyi")),
        ("ord-constrained", 41, dict(width=48, n_layers=5, modes=22, block="classic")),
    ):
        sd = hypernos_layout_state(out=out, lifting=128, projection=128, **kw)
        arch = hypernos_architecture(sd)
        m = load_preset(preset).model
        assert arch == {
            "n_modes": m.n_modes,
            "in_channels": 2,
            "out_channels": out,
            "hidden_channels": m.hidden_channels,
            "n_layers": m.n_layers,
            "block": m.block,
            "lifting_channels": m.lifting_channels,
            "projection_channels": m.projection_channels,
        }
        model = from_hypernos_state_dict(sd, activation=m.activation, padding=m.padding)
        n_theirs = sum(v.numel() * (2 if v.is_complex() else 1) for v in sd.values())
        assert model.n_parameters() == n_theirs


def test_unmappable_state_dicts_are_refused():
    sd = hypernos_layout_state(width=4, n_layers=2, modes=3, out=2, block="classic")
    with pytest.raises(ValueError, match="Residual"):
        from_hypernos_state_dict(sd, activation="gelu", padding=0, block="residual")
    with pytest.raises(ValueError, match="holds a 'classic'"):
        from_hypernos_state_dict(sd, activation="gelu", padding=0, block="zongyi")
    with pytest.raises(ValueError, match="no counterpart"):
        map_hypernos_state_dict(sd | {"extra.weight": torch.zeros(1)})
    rnn = {k: v for k, v in sd.items() if not k.startswith(("integrals.", "ws."))}
    rnn["integrals.weights"] = sd["integrals.0.weights"]
    with pytest.raises(ValueError, match="RNN"):
        map_hypernos_state_dict(rnn)
    with pytest.raises(ValueError, match="not a HyperNOs"):
        hypernos_architecture({"weight": torch.zeros(2)})
    assert isinstance(from_hypernos_state_dict(sd, activation="tanh", padding=2), FNO1d)
