"""A training split streamed from the file (data.loading): the same data, bounded buffers, resumable."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from ionfno.training import apply_overrides, load_checkpoint, load_preset, train
from ionfno.training import streaming
from ionfno.training.data import prepare
from ionfno.training.model import fit_normalizers

from ._helpers import StopTraining, stop_at, strip_times

pytestmark = pytest.mark.timeout(600)


def tiny(*overrides):
    # batch 7 over 48 samples: batches that straddle buffers, and a short last batch
    base = ["threads=1", "checkpoint_every=1", "batch_size=7"]
    return apply_overrides(load_preset("tiny"), [*base, *overrides])


def _small_buffers(monkeypatch, block=5, buffer=10):
    monkeypatch.setattr(streaming, "BLOCK_ROWS", block)
    orig = streaming.StreamedSplit.__init__

    def init(self, *a, **kw):
        orig(self, *a, **{**kw, "block_rows": block, "buffer_rows": buffer})

    monkeypatch.setattr(streaming.StreamedSplit, "__init__", init)


@pytest.mark.parametrize(
    ("kind", "input_kind"), [("pointwise", "same"), ("channel", "same"), ("pointwise", "channel")]
)
def test_streamed_normalisers_equal_the_in_memory_fit(synthetic_h5, kind, input_kind):
    from ionfno.data.dataset import read_split_tensors

    data = read_split_tensors(synthetic_h5, "train", subsample=2)
    want_in, want_out = fit_normalizers(kind, data, input_kind)
    rows = np.arange(len(data))
    got_in, got_out = streaming.fit_normalizers_streamed(
        kind, input_kind, synthetic_h5, "train", rows, {"subsample": 2, "input_encoding": "point"},
        block_rows=5,
    )
    for got, want in ((got_in, want_in), (got_out, want_out)):
        assert type(got) is type(want)
        for k, v in want.state_dict().items():
            torch.testing.assert_close(got.state_dict()[k], v, rtol=1e-4, atol=1e-6)


def test_an_epoch_visits_every_sample_once_in_bounded_buffers(synthetic_h5, monkeypatch):
    _small_buffers(monkeypatch)
    cfg = tiny("data.loading=stream", "n_train=43")
    data = prepare(cfg, synthetic_h5)
    assert data.streamed and len(data.train) == 43 and data.train.shape == (43, 2, data.n_points)
    memory = prepare(apply_overrides(cfg, ["data.loading=memory"]), synthetic_h5)
    assert not memory.streamed
    sizes = []
    read = data.train.read

    def spy(rows):
        sizes.append(len(rows))
        return read(rows)

    monkeypatch.setattr(data.train, "read", spy)
    gen = torch.Generator().manual_seed(3)
    batches = list(data.train.batches(7, gen))
    assert [b[0].shape[0] for b in batches] == [7] * 6 + [1]  # ceil(43 / 7) batches
    assert max(sizes) <= 10  # one buffer at a time
    got = torch.cat([b[0] for b in batches])
    want = memory.train.x
    # the same samples, each once: match rows by content
    key = lambda x: x[:, 0].sum(dim=1)  # noqa: E731
    torch.testing.assert_close(torch.sort(key(got)).values, torch.sort(key(want)).values)
    ys = torch.cat([b[1] for b in batches])
    torch.testing.assert_close(key(ys).sort().values, key(memory.train.y).sort().values)
    # reproducible from the generator's state, another order the next epoch
    again = list(data.train.batches(7, torch.Generator().manual_seed(3)))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, again, strict=True))
    nxt = list(data.train.batches(7, gen))
    assert not torch.equal(nxt[0][0], batches[0][0])


def test_a_streamed_run_learns_and_resumes_exactly(synthetic_h5, tmp_path, monkeypatch):
    _small_buffers(monkeypatch, block=4, buffer=12)
    cfg = tiny("data.loading=stream", "epochs=3")
    full = train(cfg, synthetic_h5, tmp_path / "full", device="cpu", progress=False)
    assert full.history[-1]["train_loss"] < full.history[0]["train_loss"]
    with pytest.raises(StopTraining):
        train(cfg, synthetic_h5, tmp_path / "cut", device="cpu", progress=False, on_epoch=stop_at(1))
    resumed = train(cfg, synthetic_h5, tmp_path / "cut", device="cpu", progress=False)
    assert strip_times(resumed.history) == strip_times(full.history)
    a, b = (load_checkpoint(d / "last.pt")["model"] for d in (tmp_path / "full", tmp_path / "cut"))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 CPU cores for 2 ranks x 1 thread")
def test_two_ranks_stream_as_one_process_does(synthetic_h5, tmp_path):
    cfg = tiny("data.loading=stream", "epochs=2")
    one = train(cfg, synthetic_h5, tmp_path / "one", device="cpu", progress=False)
    two = train(apply_overrides(cfg, ["workers=2"]), synthetic_h5, tmp_path / "two", device="cpu",
                progress=False)
    losses = [torch.tensor([r["train_loss"] for r in run.history]) for run in (two, one)]
    torch.testing.assert_close(*losses, rtol=1e-4, atol=0)


def test_a_buffer_holds_a_bounded_number_of_bytes(tmp_path):
    # ORd on the study's 10080 points: 3.4 MB a sample, so one 64-sample block per buffer;
    # a small grid: as many whole blocks as fit in BUFFER_BYTES
    args = (tmp_path / "x.h5", "train", np.arange(5000), {}, 1000.0, None, None)
    big = streaming.StreamedSplit(*args, n_states=41, n_points=10080)
    assert big.buffer_rows == streaming.BLOCK_ROWS
    small = streaming.StreamedSplit(*args, n_states=4, n_points=1260)
    assert small.buffer_rows % streaming.BLOCK_ROWS == 0
    assert streaming.split_nbytes(small.buffer_rows, 4, 1260) <= streaming.BUFFER_BYTES
    assert streaming.split_nbytes(small.buffer_rows + streaming.BLOCK_ROWS, 4, 1260) > streaming.BUFFER_BYTES


def test_auto_streams_what_would_not_fit_and_says_so(synthetic_h5, monkeypatch, capsys):
    cfg = tiny()
    assert cfg.data.loading == "auto"
    assert not prepare(cfg, synthetic_h5).streamed
    monkeypatch.setattr(streaming, "available_memory", lambda: 1000)
    assert prepare(cfg, synthetic_h5).streamed
    assert "streaming the training split" in capsys.readouterr().err
    assert not prepare(apply_overrides(cfg, ["data.loading=memory"]), synthetic_h5).streamed


def test_streaming_refuses_the_curriculum_and_unknown_modes(synthetic_h5):
    with pytest.raises(ValueError, match="coarse_epochs=0"):
        prepare(tiny("data.loading=stream", "epochs=3", "coarse_epochs=1", "coarse_factor=2"), synthetic_h5)
    with pytest.raises(ValueError, match="loading"):
        tiny("data.loading=lazy")
