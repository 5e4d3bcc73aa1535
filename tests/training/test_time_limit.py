"""Training to a wall-clock budget (train.time_limit_s): plan, re-plan, schedule, resume, hard stop."""

from __future__ import annotations

import math
import os
import time
from dataclasses import replace

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
    # replan_after=0: the probe's plan stands although the real epochs take milliseconds.
    monkeypatch.setattr(timing, "probe_epoch_seconds", _fixed_probe(10.0))
    budgeted = train(
        tiny("epochs=20", "time_limit_s=35", "replan_after=0"), synthetic_h5, tmp_path / "b", device="cpu",
        progress=False,
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


def _assert_same_run(resumed, whole, resumed_dir, whole_dir):
    """A resumed run is the uninterrupted one: the same rows (times aside), the same last weights."""
    assert strip_times(resumed.history) == strip_times(whole.history)
    a = load_checkpoint(whole_dir / "last.pt")["model"]
    b = load_checkpoint(resumed_dir / "last.pt")["model"]
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_a_resumed_run_keeps_the_plan_it_started_with(synthetic_h5, tmp_path, monkeypatch):
    cfg = tiny("epochs=20", "time_limit_s=35", "replan_after=0")
    monkeypatch.setattr(timing, "probe_epoch_seconds", _fixed_probe(10.0))
    whole = train(cfg, synthetic_h5, tmp_path / "whole", device="cpu", progress=False)

    with pytest.raises(StopTraining):
        train(cfg, synthetic_h5, tmp_path / "cut", device="cpu", progress=False, on_epoch=stop_at(1))
    # The machine "got faster": a new probe would plan 6 epochs; the resumed run must not probe again.
    monkeypatch.setattr(timing, "probe_epoch_seconds", _fixed_probe(5.0))
    resumed = train(cfg, synthetic_h5, tmp_path / "cut", device="cpu", progress=False)
    assert resumed.planned_epochs == 3 and resumed.epochs_run == 3
    _assert_same_run(resumed, whole, tmp_path / "cut", tmp_path / "whole")


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


def _history(*epoch_s):
    """metrics.csv rows of epochs that took these wall seconds (cumulative wall_time_s)."""
    walls = [sum(epoch_s[: i + 1]) for i in range(len(epoch_s))]
    return [{"epoch": i + 1, "wall_time_s": w} for i, w in enumerate(walls)]


@pytest.mark.parametrize(
    ("overrides", "planned", "n_early", "epoch_s", "expected"),
    [
        # The 2-rank FHN rollout of RESULTS.md: probe 137.7 s planned 35 epochs of 5400 s, real
        # epochs took about 172 s: after two of them, floor(0.95 * 5056 / 172) = 27 more fit.
        (("epochs=45", "time_limit_s=5400"), 35, 0, (172.0, 172.0), 29),
        # The other way: epochs twice as fast as probed, and the config's cap.
        (("epochs=45", "time_limit_s=5400"), 20, 0, (100.0, 100.0), 45),
        (("epochs=30", "time_limit_s=5400"), 20, 0, (100.0, 100.0), 30),
        # Too few full epochs yet: replan_after=2 by default, 3 here; early (coarse) epochs do not count.
        (("epochs=45", "time_limit_s=5400"), 35, 0, (172.0,), None),
        (("epochs=45", "time_limit_s=5400", "replan_after=3"), 35, 0, (172.0, 172.0), None),
        (("epochs=45", "coarse_epochs=20", "time_limit_s=5400"), 35, 10,
         (10.0,) * 10 + (172.0,), None),
        # ... and do not enter the mean: 10 cheap epochs, then two of 172 s.
        (("epochs=45", "coarse_epochs=20", "time_limit_s=5400"), 35, 10,
         (10.0,) * 10 + (172.0, 172.0), 12 + int(0.95 * (5400 - 444) / 172)),
        # Within the tolerance (5 % of the plan, one epoch at least): the plan stands.
        (("epochs=45", "time_limit_s=1000"), 9, 0, (100.0, 100.0), None),  # 2 + 7 = 9
        (("epochs=45", "time_limit_s=5400"), 40, 0, (128.0, 128.0), None),  # 2 + 37 = 39, 1 < 2
        # Shorter only when the plan no longer fits the whole budget: 8 more of 100 s fit the 800 s
        # left (the 0.95 count says 7), 9 more do not.
        (("epochs=45", "time_limit_s=1000"), 10, 0, (100.0, 100.0), None),
        (("epochs=45", "time_limit_s=1000"), 11, 0, (100.0, 100.0), 9),
        # The HH run that flipped 19, 20, 19, 20: 13 epochs of 103.1 s, 759.6 s left; 7 more fit it.
        (("epochs=105", "time_limit_s=2100"), 20, 0,
         (103.1,) * 12 + (103.1 + 2100 - 759.6 - 13 * 103.1,), None),
        # Out of time: one more epoch at least (the loop's hard stop has the last word).
        (("epochs=45", "time_limit_s=100"), 10, 0, (60.0, 60.0), 3),
        # No budget, no re-planning, or the plan already run.
        (("epochs=45",), 35, 0, (172.0, 172.0), None),
        (("epochs=45", "time_limit_s=5400", "replan_after=0"), 35, 0, (172.0, 172.0), None),
        (("epochs=45", "time_limit_s=5400"), 2, 0, (172.0, 172.0), None),
    ],
)
def test_the_re_plan_counts_what_fits_the_rest_of_the_budget(overrides, planned, n_early, epoch_s, expected):
    tc = tiny(*overrides).train
    assert timing.replan_epochs(tc, planned, n_early, _history(*epoch_s)) == expected


def _stepped(sched, opt, n):
    rates = []
    for _ in range(n):
        opt.step()
        sched.step()
        rates.append(opt.param_groups[0]["lr"])
    return rates


@pytest.mark.parametrize("name", ["onecycle", "cosine", "step", "constant"])
def test_a_re_sized_schedule_ends_at_its_floor_on_the_new_last_step(name):
    from ionfno.training.schedulers import make_scheduler, resize_scheduler

    tc = tiny("epochs=10", f"scheduler={name}", "lr=1e-2", "warmup_fraction=0.1").train
    spe = 6
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=tc.lr)
    sched = make_scheduler(name, opt, tc, spe)
    _stepped(sched, opt, 3 * spe)
    before = opt.param_groups[0]["lr"]
    shorter = replace(tc, epochs=6)
    resized = resize_scheduler(name, sched, opt, shorter, spe)
    if name in ("step", "constant"):  # per-epoch schedules do not depend on the run's length
        assert resized is sched and opt.param_groups[0]["lr"] == before
        return
    assert resized.last_epoch == 3 * spe
    # To the floor: one-cycle's decay ends at step total - 1, torch's cosine at step T_max.
    rates = _stepped(resized, opt, 3 * spe - (name == "onecycle"))
    floor = tc.lr * tc.final_lr_ratio
    assert rates[-1] == pytest.approx(floor, rel=1e-6)
    # Past the warm-up: decaying throughout.
    assert all(a >= b for a, b in zip(rates, rates[1:], strict=False))
    if name == "onecycle":  # the rates of a one-cycle schedule planned at 6 epochs from the start
        opt2 = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=tc.lr)
        fresh = make_scheduler(name, opt2, shorter, spe)
        expect = _stepped(fresh, opt2, 6 * spe - 1)[3 * spe:]
        assert rates == pytest.approx(expect, rel=1e-9)
        assert resized.state_dict()["total_steps"] == 6 * spe
    else:  # cosine: no jump (the first step after the re-size decays from the current rate)
        assert before > rates[0] > before - 2 * (before - floor) / (3 * spe)


def test_a_finished_schedule_cannot_be_re_sized():
    from ionfno.training.schedulers import make_scheduler, resize_scheduler

    tc = tiny("epochs=2", "scheduler=onecycle").train
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=tc.lr)
    sched = make_scheduler("onecycle", opt, tc, 4)
    _stepped(sched, opt, 8)
    with pytest.raises(ValueError, match="cannot re-size the 'onecycle' schedule at step 8 to 2 epochs"):
        resize_scheduler("onecycle", sched, opt, tc, 4)


def _onecycle_end(tc, epochs, steps_per_epoch):
    """The rate after the last step of a one-cycle run planned at ``epochs`` from the start (the
    schedule's floor, ``lr * final_lr_ratio``, was the step before)."""
    from ionfno.training.schedulers import make_scheduler

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=tc.lr)
    return _stepped(make_scheduler("onecycle", opt, replace(tc, epochs=epochs), steps_per_epoch), opt,
                    epochs * steps_per_epoch)[-1]


def _replan_to(at_epoch, new):
    def replan(tc, planned, n_early, history):
        return new if len(history) == at_epoch and planned != new else None

    return replan


def test_a_re_planned_run_ends_annealed_and_resumes_on_its_new_plan(synthetic_h5, tmp_path, monkeypatch):
    # The probe plans 8 epochs (10 s each, 90 s budget); after epoch 2 the run re-plans 4: it must
    # stop after 4 epochs where a one-cycle schedule of 4 epochs ends, and a run cut after
    # the re-plan must resume on it, bit for bit.
    monkeypatch.setattr(timing, "probe_epoch_seconds", _fixed_probe(10.0))
    monkeypatch.setattr(timing, "replan_epochs", _replan_to(2, 4))
    cfg = tiny("epochs=20", "time_limit_s=90", "scheduler=onecycle")
    whole = train(cfg, synthetic_h5, tmp_path / "whole", device="cpu", progress=False)
    assert whole.planned_epochs == 4 and whole.epochs_run == 4 and not whole.stopped_by_time
    ck = load_checkpoint(tmp_path / "whole" / "last.pt")
    assert ck["planned_epochs"] == 4 and ck["finished"]
    assert ck["scheduler"]["total_steps"] == 4 * 6 and ck["scheduler"]["last_epoch"] == 4 * 6
    assert ck["optimizer"]["param_groups"][0]["lr"] == pytest.approx(_onecycle_end(cfg.train, 4, 6), rel=1e-9)
    # The first two epochs followed the 8-epoch schedule (a higher rate at epoch 2 than a
    # 4-epoch plan would have had), the last two the 4-epoch one.
    four = train(tiny("epochs=4", "scheduler=onecycle"), synthetic_h5, tmp_path / "four",
                 device="cpu", progress=False)
    assert whole.history[1]["lr"] > four.history[1]["lr"]

    with pytest.raises(StopTraining):
        train(cfg, synthetic_h5, tmp_path / "cut", device="cpu", progress=False, on_epoch=stop_at(3))
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["planned_epochs"] == 4
    resumed = train(cfg, synthetic_h5, tmp_path / "cut", device="cpu", progress=False)
    assert resumed.planned_epochs == 4 and resumed.epochs_run == 4
    _assert_same_run(resumed, whole, tmp_path / "cut", tmp_path / "whole")


def test_a_run_probed_too_slow_re_plans_from_its_real_epochs(synthetic_h5, tmp_path, monkeypatch, capsys):
    # The probe says 10 s an epoch (3 of 20 fit 35 s); the real epochs take milliseconds, so after
    # the first full epoch (replan_after=1) the run re-plans to the config's 20, and ends there
    # where a 20-epoch one-cycle schedule ends.
    monkeypatch.setattr(timing, "probe_epoch_seconds", _fixed_probe(10.0))
    cfg = tiny("epochs=20", "time_limit_s=35", "replan_after=1", "scheduler=onecycle")
    res = train(cfg, synthetic_h5, tmp_path / "r", device="cpu", progress=True)
    assert res.planned_epochs == 20 and res.epochs_run == 20 and not res.stopped_by_time
    err = capsys.readouterr().err
    assert "re-planned 20 epochs instead of 3" in err
    assert "20/20" in err and "4/3" not in err  # the progress bar follows the plan
    ck = load_checkpoint(tmp_path / "r" / "last.pt")
    assert ck["scheduler"]["total_steps"] == 20 * 6
    end = _onecycle_end(cfg.train, 20, 6)
    assert ck["optimizer"]["param_groups"][0]["lr"] == pytest.approx(end, rel=1e-9)


def test_a_negative_replan_after_is_refused():
    with pytest.raises(ValueError, match=r"train.replan_after must be >= 0 \(0 = keep the probe's plan\)"):
        tiny("replan_after=-1")
