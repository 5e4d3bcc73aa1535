"""Teacher-forced epochs of a chunked rollout (train.teacher_forcing_epochs)."""

from __future__ import annotations

import csv

import pytest
import torch

import ionfno.training.timing as timing
from ionfno.training import apply_overrides, load_checkpoint, load_preset, train

from ._helpers import StopTraining, stop_at, strip_times

pytestmark = pytest.mark.timeout(180)

ROLLOUT = ("threads=1", "checkpoint_every=1", "input_normalization=channel", "chunk=16")


def tiny(*overrides):
    return apply_overrides(load_preset("tiny"), [*ROLLOUT, *overrides])


def _weights(run):
    return load_checkpoint(run / "last.pt")["model"]


def test_teacher_forced_epochs_come_first_and_resume_across_the_switch(synthetic_h5, tmp_path):
    cfg = tiny("epochs=4", "teacher_forcing_epochs=2")
    full = train(cfg, synthetic_h5, tmp_path / "full", device="cpu", progress=False)
    assert [r["teacher_forced"] for r in full.history] == [1, 1, 0, 0]
    with open(tmp_path / "full" / "metrics.csv") as f:
        assert [r["teacher_forced"] for r in csv.DictReader(f)] == ["1", "1", "0", "0"]
    # The same initial weights and batch order: a teacher-forced first epoch is another loss.
    plain = train(tiny("epochs=4"), synthetic_h5, tmp_path / "plain", device="cpu", progress=False)
    assert "teacher_forced" not in plain.history[0]
    assert abs(full.history[0]["train_loss"] - plain.history[0]["train_loss"]) > 1e-4
    # Interrupted inside the teacher-forced phase, resumed: the uninterrupted run, bit for bit
    # (the random chunk offsets come from the checkpointed shuffling generator).
    with pytest.raises(StopTraining):
        train(cfg, synthetic_h5, tmp_path / "cut", device="cpu", progress=False, on_epoch=stop_at(1))
    resumed = train(cfg, synthetic_h5, tmp_path / "cut", device="cpu", progress=False)
    assert strip_times(resumed.history) == strip_times(full.history)
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "cut")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_teacher_forcing_lowers_its_own_loss_and_is_validated_by_rolling_out(synthetic_h5, tmp_path):
    # All epochs teacher-forced: the chunk map learns (its training loss falls), and the
    # validation column is the rollout's error (recomputed here from the saved weights).
    from ionfno.surrogate import Surrogate
    from ionfno.training.data import prepare
    from ionfno.training.steps import evaluate

    cfg = tiny("epochs=4", "teacher_forcing_epochs=4", "val_every=1")
    res = train(cfg, synthetic_h5, tmp_path / "tf", device="cpu", progress=False)
    losses = [r["train_loss"] for r in res.history]
    assert losses[-1] < 0.8 * losses[0], losses
    model = Surrogate.load(tmp_path / "tf", which="last")._model
    data = prepare(cfg, synthetic_h5)
    errors = evaluate(model, data.val.x, data.val.y, batch_size=64, device=torch.device("cpu"))
    assert float(errors.mean()) == pytest.approx(res.history[-1]["val_loss"], rel=1e-5)


def test_the_time_limit_plans_the_teacher_forced_share(synthetic_h5, tmp_path, monkeypatch):
    # Teacher-forced epochs probed at 5 s, rollout epochs at 15 s, half of each: 10 s an epoch,
    # 9 of 20 fit 90 % of 100 s, 4 (rounded half) of them teacher-forced.
    def probe(*args, teacher_forcing=False, **kwargs):
        return 5.0 if teacher_forcing else 15.0

    monkeypatch.setattr(timing, "probe_epoch_seconds", probe)
    # replan_after=0: the probe's plan stands (the real epochs take milliseconds, not 5-15 s).
    cfg = tiny("epochs=20", "teacher_forcing_epochs=10", "time_limit_s=100", "replan_after=0")
    assert timing.plan_epochs(cfg.train, 15.0, 5.0) == (9, 4)
    res = train(cfg, synthetic_h5, tmp_path / "b", device="cpu", progress=False)
    assert res.planned_epochs == 9
    assert [r["teacher_forced"] for r in res.history] == [1] * 4 + [0] * 5
    assert load_checkpoint(tmp_path / "b" / "last.pt")["planned_teacher_epochs"] == 4


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("chunk=0", "teacher_forcing_epochs=1"), r"needs a chunked rollout \(model.chunk > 0\)"),
        (("epochs=3", "teacher_forcing_epochs=4"),
         r"teacher_forcing_epochs must be in \[0, train.epochs=3\]"),
        (("teacher_forcing_epochs=-1",), r"teacher_forcing_epochs must be in \[0"),
    ],
)
def test_bad_teacher_forcing_settings_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny(*overrides)


def test_a_rollout_fine_tunes_at_another_chunk_length(synthetic_h5, tmp_path):
    # --init into model.chunk = 14 from a run at 16: the chunk map's weights carry over (tau, the
    # chunk clock, is derived from the chunk length and not saved), and the run trains from them.
    before = train(tiny("epochs=1"), synthetic_h5, tmp_path / "k16", device="cpu", progress=False)
    start = _weights(tmp_path / "k16")
    assert "tau" not in start
    res = train(tiny("epochs=1", "chunk=14", "lr=1e-9"), synthetic_h5, tmp_path / "k14", device="cpu",
                progress=False, init=tmp_path / "k16")
    assert all(torch.allclose(_weights(tmp_path / "k14")[k], start[k], atol=1e-6) for k in start)
    # It validated by stepping at 14, not 16: the same weights roll out to another error.
    assert load_checkpoint(tmp_path / "k14" / "last.pt")["config"]["model"]["chunk"] == 14
    assert abs(res.history[0]["val_loss"] - before.history[0]["val_loss"]) > 1e-6
