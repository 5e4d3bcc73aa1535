"""Every export format against Surrogate.predict; bad opsets refused before any work."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ionfno._cli import evaluate as cli_evaluate  # noqa: E402
from ionfno.cli import main  # noqa: E402
from ionfno.evaluation import export  # noqa: E402
from ionfno.surrogate import Surrogate  # noqa: E402
from tests.training.conftest import write_synthetic  # noqa: E402

pytestmark = pytest.mark.timeout(600)


def _trained(tmp_path_factory, name: str, *overrides: str):
    """A 1-epoch tiny run on 128 synthetic points, with these config overrides."""
    from ionfno.training import apply_overrides, load_preset, train

    d = tmp_path_factory.mktemp(name)
    data = write_synthetic(d / "data.h5", n_points=128)
    cfg = apply_overrides(load_preset("tiny"), ["threads=1", "epochs=1", *overrides])
    train(cfg, data, d / "run", device="cpu", progress=False)
    return d / "run"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return _trained(tmp_path_factory, "export")


@pytest.fixture(scope="module")
def channel_run(tmp_path_factory):
    # Channel normalisers and no t/T channel: pt2 export used to fail on the normaliser's
    # data-dependent branch, and the network takes one input channel fewer.
    return _trained(tmp_path_factory, "export_channel",
                    "normalization=channel", "time_channel=false", "padding=16")


@pytest.fixture(scope="module")
def rollout_run(tmp_path_factory):
    # A chunked rollout (model.chunk): a Python loop over the steps, fixed by the grid.
    return _trained(tmp_path_factory, "export_rollout", "input_normalization=channel", "chunk=14")


def _inputs(sur: Surrogate, batch: int) -> np.ndarray:
    return sur.pulse_input(np.linspace(0.2, 1.8, batch), np.linspace(1.0, 80.0, batch))


def test_cli_constants_are_the_library_ones():
    assert cli_evaluate._EXPORT_FORMATS == export.EXPORT_FORMATS
    assert cli_evaluate._ONNX_OPSETS == export.ONNX_OPSETS


LOADERS = {
    "pt2": lambda path: torch.export.load(str(path)).module(),
    "torchscript": lambda path: torch.jit.load(str(path)),
}


@pytest.mark.parametrize("which", ["run", "channel_run", "rollout_run"])
@pytest.mark.parametrize(
    "fmt, suffix, exporter", [("pt2", ".pt2", "torch.export"), ("torchscript", ".pt", "torch.jit")]
)
def test_torch_formats_match_predict(request, tmp_path, capsys, fmt, suffix, exporter, which):
    run = request.getfixturevalue(which)
    out = tmp_path / f"sur{suffix}"
    assert main(["export", str(run), "--out", str(out)]) == 0  # the format follows the suffix
    assert f"({fmt})" in capsys.readouterr().out
    meta = export.load_meta(out)
    assert meta["exporter"].startswith(exporter) and meta["state_names"] == ["V", "w"]
    net = LOADERS[fmt](out)
    sur = Surrogate.load(run)
    for batch in (1, 3):  # the batch size is free
        i_app = _inputs(sur, batch)
        with torch.no_grad():
            got = net(torch.as_tensor(i_app, dtype=torch.float32)).double().numpy()
        np.testing.assert_allclose(got, sur.predict_array(i_app), rtol=1e-5, atol=1e-6)


def test_onnx_dynamo_export_matches_predict_and_leaves_the_surrogate_usable(run, tmp_path):
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    from ionfno.fno import spectral_conv

    path = export.export_onnx(run, tmp_path / "sur.onnx")
    assert "dynamo" in export.load_meta(path)["exporter"]
    sess = ort.InferenceSession(str(path))
    sur = Surrogate.load(run)
    for batch in (1, 3):
        i_app = _inputs(sur, batch)
        got = sess.run(None, {"i_app": i_app.astype(np.float32)})[0]
        ref = sur.predict_array(i_app)
        # The export uses the real DFT form of the spectral layers, the surrogate may use rfft:
        # the same operator, summed in another order in float32.
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())
    # tracing left no fake tensors behind in the cache of DFT bases
    assert all(type(b) is torch.Tensor for bases in spectral_conv._BASIS_CACHE.values() for b in bases)


@pytest.mark.parametrize("opset", ["1", "17", "24", "1000"])
def test_an_unsupported_opset_is_refused_before_anything_runs(tmp_path, capsys, opset):
    out = tmp_path / "x.onnx"
    # the run folder does not even exist: the opset is checked first
    assert main(["export", str(tmp_path / "no-run"), "--out", str(out), "--opset", opset]) == 2
    err = capsys.readouterr().err
    assert f"ONNX opset {opset} is not supported: the exporter writes opsets 18 to 23" in err
    assert "Traceback" not in err and len(err) < 300 and not out.exists()
