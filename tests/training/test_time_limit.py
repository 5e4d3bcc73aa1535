"""Training to a wall-clock budget (train.time_limit_s): plan, schedule, resume, hard stop."""

from __future__ import annotations

import math
import os
import time

import pytest
import torch

import ionfno.training.timing as timing
from ionfno.training import apply_overrides, build_model, load_checkpoint, load_preset, train

from ._helpers import StopTraining, stop_at, strip_times

pytestmark = pytest.mark.timeout(180)


def tiny(*overrides):
    return apply_overrides(load_preset("tiny"), ["threads=1", "checkpoint_every=1", *overrides])


@pytest.mark.parametrize(
    ("overrides", "full_s", "coarse_s", "expected"),
    [
        ((), 10.0, None, (5, 0)),  # no limit: the config's own plan
        (("time_limit_s=100",), 10.0, None, (5, 0)),  # 9 epochs fit, capped at epochs=5
        (("epochs=50", "time_limit_s=100"), 10.0, None, (9, 0)),  # floor(0.90 * 100 / 10)
        (("epochs=50", "time_limit_s=100"), 1000.0, None, (1, 0)),  # never less than one epoch
        # Half the epochs coarse at 5 s, half full at 15 s: 10 s an epoch on average.
        (("epochs=50", "coarse_epochs=25", "time_limit_s=200"), 15.0, 5.0, (18, 9)),
    ],
)
def test_the_plan_fills_90_percent_of_the_budget(overrides, full_s, coarse_s, expected):
    assert timing.plan_epochs(tiny(*overrides).train, full_s, coarse_s) == expected


def test_the_probe_times_real_steps_and_leaves_the_model_and_rng_alone(synthetic_h5):
    from ionfno.training.data import prepare
    from ionfno.training.losses import get_loss
    from ionfno.training.steps import SingleProcess

    cfg = tiny()
    data = prepare(cfg, synthetic_h5)
    torch.manual_seed(0)
    model = build_model(cfg, 2, 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    seconds = timing.probe_epoch_seconds(
        SingleProcess(model, torch.device("cpu")), data.train.x, data.train.y, data.val.x, data.val.y,
        cfg=cfg, loss_fn=get_loss("l2"),
    )
    assert math.isfinite(seconds) and seconds > 0
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert torch.equal(torch.get_rng_state(), rng)


def test_one_slow_probe_run_does_not_become_the_plan(synthetic_h5):
    # The timed steps run as timing.CHUNKS runs and their median counts: a burst of another
    # process during one run must not set the plan.
    from ionfno.training.data import prepare
    from ionfno.training.losses import get_loss
    from ionfno.training.steps import SingleProcess

    cfg = tiny()
    data = prepare(cfg, synthetic_h5)
    step = SingleProcess(build_model(cfg, 2, 2), torch.device("cpu"))
    calls = []

    def train_epoch(x, y, **kw):  # 10 ms a step, 1 s a step in the second timed run
        calls.append(x.shape[0])
        n = math.ceil(x.shape[0] / kw["batch_size"])
        time.sleep(n * (1.0 if len(calls) == 3 else 0.01))
        return 0.0

    step.train_epoch = train_epoch
    step.evaluate = lambda x, y, batch_size: torch.zeros(x.shape[0], 2)
    seconds = timing.probe_epoch_seconds(step, data.train.x, data.train.y, data.val.x, data.val.y,
                                         cfg=cfg, loss_fn=get_loss("l2"))
    assert len(calls) == 1 + timing.CHUNKS
    per_epoch = math.ceil(data.train.x.shape[0] / cfg.train.batch_size) * 0.01
    assert per_epoch <= seconds < 3 * per_epoch + 0.5


def _fixed_probe(seconds):
    def probe(*args, **kwargs):
        return seconds

    return probe


def test_a_budgeted_run_is_the_run_of_its_planned_length(synthetic_h5, tmp_path, monkeypatch):
    # 3 epochs of 10 s fit 90 % of 35 s: the run must be exactly the 3-epoch run, one-cycle
    # schedule included (its rate reaches the floor at the plan's last step, not at epoch 20's).
    monkeypatch.setattr(timing, "probe_epoch_seconds", _fixed_probe(10.0))
    budgeted = train(
        tiny("epochs=20", "time_limit_s=35"), synthetic_h5, tmp_path / "b", device="cpu", progress=False
    )
    plain = train(tiny("epochs=3"), synthetic_h5, tmp_path / "p", device="cpu", progress=False)
    assert budgeted.planned_epochs == 3 and budgeted.epochs_run == 3 and not budgeted.stopped_by_time
    assert strip_times(budgeted.history) == strip_times(plain.history)
    ck = load_checkpoint(tmp_path / "b" / "last.pt")
    assert ck["planned_epochs"] == 3 and ck["finished"]
    assert ck["config"]["train"]["epochs"] == 20  # the config is kept as given
    # The schedule is the 3-epoch run's (48 samples / batch 8 = 6 steps an epoch).
    assert ck["scheduler"]["total_steps"] == 18
    assert ck["scheduler"] == load_checkpoint(tmp_path / "p" / "last.pt")["scheduler"]


def test_a_resumed_run_keeps_the_plan_it_started_with(synthetic_h5, tmp_path, monkeypatch):
    cfg = tiny("epochs=20", "time_limit_s=35")
    monkeypatch.setattr(timing, "probe_epoch_seconds", _fixed_probe(10.0))
    whole = train(cfg, synthetic_h5, tmp_path / "whole", device="cpu", progress=False)

    with pytest.raises(StopTraining):
        train(cfg, synthetic_h5, tmp_path / "cut", device="cpu", progress=False, on_epoch=stop_at(1))
    # The machine "got faster": a new probe would plan 6 epochs; the resumed run must not re-plan.
    monkeypatch.setattr(timing, "probe_epoch_seconds", _fixed_probe(5.0))
    resumed = train(cfg, synthetic_h5, tmp_path / "cut", device="cpu", progress=False)
    assert resumed.planned_epochs == 3 and resumed.epochs_run == 3
    assert strip_times(resumed.history) == strip_times(whole.history)
    a = load_checkpoint(tmp_path / "whole" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "cut" / "last.pt")["model"]
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_a_machine_slower_than_the_probe_stops_the_run_within_the_budget(
    synthetic_h5, tmp_path, monkeypatch
):
    # The probe claims epochs are free (plan = all 5), but the budget is a millisecond: the run
    # must stop after its first epoch, validated, with a best checkpoint and test errors.
    monkeypatch.setattr(timing, "probe_epoch_seconds", _fixed_probe(1e-9))
    cfg = tiny("epochs=5", "val_every=3", "time_limit_s=0.001")
    res = train(cfg, synthetic_h5, tmp_path / "r", device="cpu", progress=False)
    assert res.planned_epochs == 5
    assert res.epochs_run == 1 and res.stopped_by_time
    assert math.isfinite(res.history[-1]["val_loss"])  # validated although val_every=3
    assert res.best_epoch == 1 and res.test_metrics is not None
    ck = load_checkpoint(tmp_path / "r" / "last.pt")
    assert ck["finished"] and ck["stopped_by_time"]
    # Running the command again finds the run finished; it does not train on past the budget.
    again = train(cfg, synthetic_h5, tmp_path / "r", device="cpu", progress=False)
    assert again.epochs_run == 1 and again.stopped_by_time


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 CPU cores for 2 workers")
def test_the_probe_runs_through_the_data_parallel_workers(synthetic_h5, tmp_path):
    # A generous budget on the real probe: the plan is the config's cap, and the run with
    # 2 workers is the ordinary one (the probe left weights and shuffling untouched).
    cfg = tiny("epochs=2", "batch_size=7", "coarse_epochs=1", "time_limit_s=3600")
    two = apply_overrides(cfg, ["workers=2"])
    res = train(two, synthetic_h5, tmp_path / "w", device="cpu", progress=False)
    plain = tiny("epochs=2", "batch_size=7", "coarse_epochs=1")
    ref = train(plain, synthetic_h5, tmp_path / "r", device="cpu", progress=False)
    assert res.planned_epochs == 2 and not res.stopped_by_time
    torch.testing.assert_close(
        torch.tensor([r["train_loss"] for r in res.history]),
        torch.tensor([r["train_loss"] for r in ref.history]),
        rtol=1e-4, atol=0,
    )
