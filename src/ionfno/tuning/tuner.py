"""Run a tuning study: ask for a configuration, train it with pruning, record it, repeat.

Each trial trains through :func:`ionfno.training.train` (the code behind ``ionfno train``);
after every epoch it reports the validation error (the study's metric) to optuna and stops
early when the pruner says so. The study ends when it holds ``trials`` *finished* trials
(complete or pruned) in total, whichever process ran them; failed trials do not count and are
not retried, except trials whose process died or hit ``--timeout`` (retried once).

Exactly ``trials``, also with many workers: a worker only asks for a new trial while
``finished + running + waiting < trials``, and a trial is cancelled (recorded as failed with
reason ``surplus``, before any training) if more than ``trials - 1`` of the finished, running
or waiting trials were created before it. Trial ids order creation, so two workers racing for
the last slot agree on which of them gets it; the check is repeated after every epoch, which
settles the rare case of two creations not yet visible to each other.

Folder layout (``DIR``)::

    DIR/study.db                   embedded store (unless --storage)
    DIR/tune.json                  the tuning settings of the last run started here
    DIR/trials/NNNN/trial.json     the trial's parameters, full config, parameter count, state, value
    DIR/trials/NNNN/config.json    ready-to-train config (``ionfno train --config``)
    DIR/trials/NNNN/{best,last}.pt, metrics.csv   from training (validation curve per epoch)
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .._io import preset_names, read_preset_json, write_json_atomic
from .pruners import PRUNERS, make_pruner
from .space import SearchSpace, base_values, load_space, suggest
from .storage import (
    check_study_name,
    default_storage_url,
    heartbeat,
    open_storage,
    redact_url,
    worker_alive,
    worker_identity,
)

__all__ = [
    "TuneConfig",
    "TuneSummary",
    "tune",
    "load_tune_preset",
    "list_tune_presets",
    "tune_config_from_dict",
    "default_study_name",
    "count_trials",
]


@dataclass
class TuneConfig:
    """How a study is run (everything but the data, the folder and the storage URL).

    Attributes
    ----------
    space : str
        Search space name (``ionfno/presets/spaces``) or path to a space JSON file.
    budget : int or None
        Total trainable parameters every trial must have within the space's tolerance (2 %).
    trials : int
        Finished (complete or pruned) trials the study must hold in the end.
    timeout : float or None
        Seconds this process tunes; a trial still running then is stopped, recorded as failed
        (``timeout``) and retried, from its checkpoint, by the next run.
    pruner : str
        Name in ``PRUNERS``: ``asha``, ``hyperband``, ``median``, ``none``.
    grace : int
        Epochs every trial trains before it may be pruned.
    reduction_factor : int
        ASHA / Hyperband reduction factor.
    base : str
        Training preset name or config JSON path for everything the space does not sample;
        empty: ``<dataset model>-default``.
    overrides : list of str
        ``key=value`` training settings fixed for every trial (``--set``).
    seed : int
        Study seed (sampler; each trial's training seed stays the base config's).
    n_startup_trials : int
        Random trials before TPE.
    base_first : bool
        Make the base configuration's values of the space's parameters the study's first trial
        (enqueued once; it counts among the start-up trials), as the reference study evaluated
        its default configuration first (Ray Tune ``HyperOptSearch(points_to_evaluate=[default])``).
        The base values must lie in the space.
    jobs : int
        Trials run at the same time in this process (threads).
    threads : int or None
        Torch threads per trial; default ``cores // jobs``. ``jobs * threads`` may not exceed
        the cores available to this process.
    device : str
        ``auto``, ``cpu`` or ``cuda``.
    max_retries : int
        Retries of a trial whose worker died or timed out.
    max_failures : int
        Stop this process after that many failed trials in a row (a broken setup, not bad luck).
    heartbeat_interval : int
        Seconds between heartbeats of a running trial; a trial silent for twice as long is
        failed by any other worker.
    description : str
    """

    space: str = "constrained"
    budget: int | None = None
    trials: int = 20
    timeout: float | None = None
    pruner: str = "asha"
    grace: int = 1
    reduction_factor: int = 4
    base: str = ""
    overrides: list[str] = field(default_factory=list)
    seed: int = 0
    n_startup_trials: int = 10
    base_first: bool = False
    jobs: int = 1
    threads: int | None = None
    device: str = "auto"
    max_retries: int = 1
    max_failures: int = 10
    heartbeat_interval: int = 30
    description: str = ""

    def __post_init__(self) -> None:
        if self.pruner not in PRUNERS:
            raise ValueError(f"Unknown pruner {self.pruner!r}; expected one of {sorted(PRUNERS)}")
        for name in ("trials", "grace", "jobs", "max_failures", "heartbeat_interval", "n_startup_trials"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.reduction_factor < 2:
            raise ValueError(f"reduction_factor must be >= 2, got {self.reduction_factor}")
        if self.budget is not None and (isinstance(self.budget, bool) or self.budget < 1):
            raise ValueError(f"budget must be a positive number of parameters, got {self.budget!r}")
        if self.timeout is not None and not self.timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {self.timeout}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"Unknown device {self.device!r}; expected one of ['auto', 'cpu', 'cuda']")
        self.overrides = list(self.overrides)


def tune_config_from_dict(d: dict[str, Any], *, source: str = "tuning preset") -> TuneConfig:
    """Build a :class:`TuneConfig` from a dict, refusing unknown keys (listing the valid ones)."""
    if not isinstance(d, dict):
        raise ValueError(f"{source}: expected a JSON object")
    names = {f.name for f in fields(TuneConfig)}
    bad = sorted(set(d) - names)
    if bad:
        raise ValueError(f"{source}: unknown key(s) {bad}; valid keys: {sorted(names)}")
    try:
        return TuneConfig(**d)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{source}: {e}") from None


def list_tune_presets() -> list[str]:
    """Names of the shipped tuning presets, sorted."""
    return preset_names("tune")


def load_tune_preset(name_or_path: str | os.PathLike) -> TuneConfig:
    """Load a shipped tuning preset by name (``"cpu-fhn"``) or a preset file by path."""
    text = str(name_or_path)
    d = read_preset_json(text, "tune", "tuning preset")
    return tune_config_from_dict(d, source=f"tuning preset {text!r}")


def default_study_name(cfg: TuneConfig) -> str:
    """``<space>`` or ``<space>-budget<N>``: studies of different spaces never mix by accident."""
    stem = Path(cfg.space).stem if cfg.space.endswith(".json") else cfg.space
    return stem if cfg.budget is None else f"{stem}-budget{cfg.budget}"


@dataclass
class TuneSummary:
    """What :func:`tune` returns (counts are over the whole study, all workers)."""

    study_name: str
    storage: str
    complete: int
    pruned: int
    failed: int
    best_number: int | None
    best_value: float | None
    best_config: dict[str, Any] | None
    stopped: str
    elapsed_s: float


@dataclass
class _Counts:
    complete: int = 0
    pruned: int = 0
    running: int = 0
    waiting: int = 0
    failed: int = 0

    @property
    def finished(self) -> int:
        return self.complete + self.pruned


def count_trials(study: Any) -> _Counts:
    """Trials of ``study`` by state (finished = complete + pruned)."""
    from optuna.trial import TrialState

    c = _Counts()
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.COMPLETE:
            c.complete += 1
        elif t.state == TrialState.PRUNED:
            c.pruned += 1
        elif t.state == TrialState.RUNNING:
            c.running += 1
        elif t.state == TrialState.WAITING:
            c.waiting += 1
        else:
            c.failed += 1
    return c


class _Surplus(Exception):
    """The study already has its trials; this one is cancelled."""


class _Deadline(Exception):
    """``--timeout`` reached while the trial was training."""


# ---------------------------------------------------------------------------- the tuner
class _Tuner:
    """State shared by the worker threads of one ``tune`` call."""

    def __init__(
        self,
        cfg: TuneConfig,
        data_path: Path,
        out_dir: Path,
        storage_url: str,
        study_name: str,
        progress: bool,
    ) -> None:
        import optuna

        from ..data.storage import dataset_info
        from ..training import apply_overrides, load_config, load_preset, with_changes

        self.cfg, self.data_path, self.out_dir = cfg, data_path, out_dir
        self.progress = progress
        info = dataset_info(data_path)
        self.out_channels = len(info["state_names"])
        model_name = str(info.get("model", ""))

        # Torch threads are set deliberately: jobs x threads must fit in the cores we have.
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self.threads = cfg.threads or max(1, cores // cfg.jobs)
        if cfg.jobs * self.threads > cores:
            raise ValueError(
                f"--jobs {cfg.jobs} x {self.threads} torch thread(s) per trial needs "
                f"{cfg.jobs * self.threads} cores but this process has {cores}; lower --jobs or --threads"
            )

        base_name = cfg.base or f"{model_name}-default"
        base_cfg = load_config(base_name) if base_name.endswith(".json") else load_preset(base_name)
        # --set text is parsed once, here; from then on the config travels typed.
        self.base = with_changes(apply_overrides(base_cfg, cfg.overrides), train={"threads": self.threads})
        if cfg.jobs > 1 and self.base.train.workers > 1:
            raise ValueError(
                f"train.workers = {self.base.train.workers} starts data-parallel ranks per trial, one trial "
                f"at a time per process; use --jobs 1 (or --set train.workers=1 with --jobs {cfg.jobs})"
            )
        self.space: SearchSpace = load_space(cfg.space)
        if cfg.budget is not None and self.space.budget is None:
            raise ValueError(
                f"--budget needs a space with a 'budget' section (e.g. 'constrained'); {cfg.space!r} has none"
            )
        n_stored = int(info["n_points"])
        self.n_points = len(range(0, n_stored, self.base.data.subsample))
        self.max_epochs = self.base.train.epochs

        self.storage = open_storage(
            storage_url, heartbeat_interval=cfg.heartbeat_interval, on_stale=self._on_stale
        )
        self.study = optuna.create_study(
            study_name=study_name,
            storage=self.storage,
            direction="minimize",
            load_if_exists=True,
            sampler=_sampler(cfg),
            pruner=make_pruner(
                cfg.pruner, grace=cfg.grace, reduction_factor=cfg.reduction_factor, max_epochs=self.max_epochs
            ),
        )
        self._check_same_study()
        if cfg.base_first:
            self.study.enqueue_trial(
                base_values(self.space, self.base), user_attrs={"base_config": base_name}, skip_if_exists=True
            )
        self.worker = worker_identity()
        self.lock = threading.Lock()
        self.start = time.monotonic()
        self.deadline = None if cfg.timeout is None else self.start + cfg.timeout
        self.stop_reason: str | None = None
        self.fail_streak = 0
        self.bar = None

    # -- study identity ------------------------------------------------------------------
    def _check_same_study(self) -> None:
        """Refuse to mix trials of different spaces, budgets or base settings in one study.

        The base config counts without the settings that do not change results
        (``ionfno.training.RESULT_FREE``).
        """
        from ..training import config_diff

        ident = {
            "space": self.space.to_dict(),
            "budget": self.cfg.budget,
            "base": asdict(self.base),
            "n_points": self.n_points,
            "out_channels": self.out_channels,
        }
        ident = json.loads(json.dumps(ident))
        saved = self.study.user_attrs.get("ionfno")
        if saved is None:
            self.study.set_user_attr("ionfno", ident)
            self.study.set_user_attr("space_name", self.cfg.space)
            self.study.set_user_attr("dataset", str(self.data_path))
            return
        detail = config_diff(saved.get("base", {}), self.base)
        diffs = [k for k in ident if k != "base" and saved.get(k) != ident[k]] + (["base"] if detail else [])
        if diffs:
            raise ValueError(
                f"Study {self.study.study_name!r} was created with a different {', '.join(diffs)} "
                f"({'; '.join(detail[:5])}); use the same settings, another --study name or another --out"
                if detail
                else f"Study {self.study.study_name!r} was created with a different {', '.join(diffs)}; "
                "use the same settings, another --study name or another --out"
            )

    # -- trials left behind ----------------------------------------------------------------
    def _on_stale(self, study: Any, frozen: Any) -> None:
        """Heartbeat callback: a trial of a silent worker was just failed by us."""
        self._retry(frozen, "interrupted (no heartbeat)")

    def _retry(self, frozen: Any, reason: str) -> None:
        retries = int(frozen.user_attrs.get("retries", 0))
        if retries >= self.cfg.max_retries or frozen.user_attrs.get("surplus"):
            return
        self.study.enqueue_trial(
            frozen.params,
            user_attrs={
                "retry_of": int(frozen.user_attrs.get("retry_of", frozen.number)),
                "retries": retries + 1,
                "resume_from": frozen.user_attrs.get("trial_dir"),
                "retry_reason": reason,
            },
        )

    def recover_orphans(self) -> None:
        """Fail (and retry) running trials whose worker process on this host has died."""
        import optuna
        from optuna.trial import TrialState

        store = self.study._storage  # the study's (cached) view of self.storage
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            w = t.user_attrs.get("worker")
            if not w or worker_alive(w) is not False:
                continue
            try:
                store.set_trial_user_attr(
                    t._trial_id, "fail_reason", f"interrupted (process {w.get('pid')} died)"
                )
                won = store.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # another worker got there first
            if won:
                self._retry(store.get_trial(t._trial_id), "interrupted")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            optuna.storages.fail_stale_trials(self.study)

    # -- one worker ------------------------------------------------------------------------
    def worker_loop(self) -> None:
        while self.stop_reason is None:
            if self.deadline is not None and time.monotonic() >= self.deadline:
                self._stop("timeout")
                break
            with self.lock:
                self.recover_orphans()
                c = count_trials(self.study)
                self._show(c)
                if c.finished >= self.cfg.trials:
                    self._stop("done")
                    break
                busy = c.waiting == 0 and c.finished + c.running >= self.cfg.trials
                trial = None if busy else self.study.ask()
            if trial is None:  # the last trials run elsewhere; they may still fail
                time.sleep(min(5.0, max(1.0, self.cfg.heartbeat_interval / 6)))
                continue
            state = self.run_trial(trial)
            if state == "fail":
                self.fail_streak += 1
                if self.fail_streak >= self.cfg.max_failures:
                    self._stop(f"{self.fail_streak} failed trials in a row; see fail_reason in tune-report")
            elif state in ("complete", "pruned"):
                self.fail_streak = 0

    def _stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason

    def _show(self, c: _Counts) -> None:
        if self.bar is None:
            return
        self.bar.n = min(c.finished, self.cfg.trials)
        best = _best(self.study)
        self.bar.set_postfix(
            run=c.running,
            pruned=c.pruned,
            failed=c.failed,
            best=f"{best.value:.4g}" if best is not None else "-",
        )
        self.bar.refresh()

    def _is_surplus(self, trial_id: int) -> bool:
        from optuna.trial import TrialState

        holders = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
        before = sum(
            1 for t in self.study.get_trials(deepcopy=False, states=holders) if t._trial_id < trial_id
        )
        return before >= self.cfg.trials

    def run_trial(self, trial: Any) -> str:
        """Train one trial and tell the study how it ended; returns the state's name."""
        import optuna
        from optuna.trial import TrialState

        from ..training import save_config, train

        trial_dir = self.out_dir / "trials" / f"{trial.number:04d}"
        trial.set_user_attr("worker", self.worker)
        trial.set_user_attr("trial_dir", str(trial_dir.resolve()))
        last_epoch = [0]
        record: dict[str, Any] = {"number": trial.number, "study": self.study.study_name}
        try:
            with heartbeat(self.study._storage, trial._trial_id, self.cfg.heartbeat_interval):
                if self._is_surplus(trial._trial_id):
                    raise _Surplus
                cfg = suggest(
                    trial,
                    self.space,
                    self.base,
                    n_points=self.n_points,
                    out_channels=self.out_channels,
                    budget=self.cfg.budget,
                )
                trial.set_user_attr("config", json.loads(json.dumps(asdict(cfg))))
                trial_dir.mkdir(parents=True, exist_ok=True)
                save_config(cfg, trial_dir / "config.json")
                record.update(
                    params=trial.params,
                    n_parameters=trial.user_attrs["n_parameters"],
                    size_rule=trial.user_attrs["size_rule"],
                    config=asdict(cfg),
                )
                self._write_record(trial_dir, record, state="RUNNING")
                resumed = self._adopt_checkpoint(trial, trial_dir)

                def on_epoch(epoch: int, metrics: dict[str, Any]) -> None:
                    last_epoch[0] = epoch
                    if math.isfinite(float(metrics["val_loss"])):  # NaN: not validated (val_every)
                        trial.report(float(metrics["val_loss"]), epoch)
                    if self.deadline is not None and time.monotonic() >= self.deadline:
                        raise _Deadline
                    if self._is_surplus(trial._trial_id):
                        raise _Surplus
                    # A trial that has trained all its epochs is complete, whatever its rank.
                    if epoch < cfg.train.epochs and trial.should_prune():
                        raise optuna.TrialPruned(f"pruned at epoch {epoch}")

                for epoch, value in resumed:  # the dead trial's curve, so the pruner sees it all
                    trial.report(value, epoch)
                    last_epoch[0] = epoch
                result = train(
                    cfg,
                    self.data_path,
                    trial_dir,
                    device=self.cfg.device,
                    resume=True,
                    progress=False,
                    on_epoch=on_epoch,
                )
                if result.n_parameters != trial.user_attrs["n_parameters"]:
                    warnings.warn(
                        f"trial {trial.number}: model has {result.n_parameters} parameters, "
                        f"the formula said {trial.user_attrs['n_parameters']}",
                        stacklevel=1,
                    )
                    trial.set_user_attr("n_parameters", result.n_parameters)
                attrs = {
                    "epochs_run": result.epochs_run,
                    "best_epoch": result.best_epoch,
                    "final_val": result.final_val,
                }
                if result.test_metrics and "best" in result.test_metrics:
                    # The study's metric on the test split, overall and per variable.
                    attrs["test"] = {k: v for k, v in result.test_metrics["best"].items() if k != "parts"}
                for k, v in attrs.items():
                    trial.set_user_attr(k, v)
                value = float(result.best_val)
                if not math.isfinite(value):
                    raise FloatingPointError(f"validation error is {value}")
                self.study.tell(trial, value)
                self._write_record(trial_dir, record | attrs, state="COMPLETE", value=value)
                return "complete"
        except optuna.TrialPruned:
            trial.set_user_attr("epochs_run", last_epoch[0])
            frozen = self.study.tell(trial, state=TrialState.PRUNED)
            self._write_record(
                trial_dir, record | {"epochs_run": last_epoch[0]}, state="PRUNED", value=frozen.value
            )
            return "pruned"
        except _Surplus:
            trial.set_user_attr("surplus", True)
            trial.set_user_attr("fail_reason", f"surplus: the study already has {self.cfg.trials} trials")
            self.study.tell(trial, state=TrialState.FAIL)
            return "surplus"
        except _Deadline:
            self._fail(trial, trial_dir, record, "timeout: stopped at --timeout (retried by the next run)")
            self._retry(self.study._storage.get_trial(trial._trial_id), "timeout")
            self._stop("timeout")
            return "timeout"
        except (KeyboardInterrupt, SystemExit):
            self._fail(trial, trial_dir, record, "interrupted (KeyboardInterrupt)")
            self._retry(self.study._storage.get_trial(trial._trial_id), "interrupted")
            raise
        except Exception as e:  # non-finite loss, out of memory, a bad config: record, go on
            _free_cuda_memory()
            self._fail(trial, trial_dir, record, f"{type(e).__name__}: {e}"[:1000])
            return "fail"

    def _fail(self, trial: Any, trial_dir: Path, record: dict[str, Any], reason: str) -> None:
        from optuna.trial import TrialState

        trial.set_user_attr("fail_reason", reason)
        self.study.tell(trial, state=TrialState.FAIL)
        if trial_dir.exists():
            self._write_record(trial_dir, record | {"fail_reason": reason}, state="FAIL")
        if self.progress:
            print(f"trial {trial.number} failed: {reason}", file=sys.stderr)

    def _write_record(
        self, trial_dir: Path, record: dict[str, Any], *, state: str, value: float | None = None
    ) -> None:
        write_json_atomic(trial_dir / "trial.json", record | {"state": state, "value": value})

    def _adopt_checkpoint(self, trial: Any, trial_dir: Path) -> list[tuple[int, float]]:
        """For a retried trial: copy the dead trial's checkpoint here and return its curve."""
        from ..training import RunDir, config_diff

        src, here = trial.user_attrs.get("resume_from"), RunDir(trial_dir)
        if not src or not RunDir(src).checkpoint("last").exists() or here.checkpoint("last").exists():
            return []
        try:
            ck = RunDir(src).load("last")
        except Exception:  # unreadable: start over
            return []
        if config_diff(ck["config"], trial.user_attrs["config"]):
            return []
        here.copy_from(RunDir(src))
        trial.set_user_attr("resumed_at_epoch", int(ck["epoch"]))
        return [
            (int(r["epoch"]), float(r["val_loss"])) for r in ck["history"] if math.isfinite(float(r["val_loss"]))
        ]


def _free_cuda_memory() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:
        pass


def _best(study: Any) -> Any:
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    return min(done, key=lambda t: t.value) if done else None


def _sampler(cfg: TuneConfig) -> Any:
    from .sampler import make_sampler

    return make_sampler(cfg.seed, n_startup_trials=cfg.n_startup_trials)


def tune(
    cfg: TuneConfig,
    data_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    storage: str | None = None,
    study_name: str | None = None,
    progress: bool = True,
) -> TuneSummary:
    """Run (or continue) a tuning study until it holds ``cfg.trials`` finished trials.

    Parameters
    ----------
    cfg : TuneConfig
    data_path : path-like
        Dataset file with train and val splits (test optional: each trial then records its
        test error too).
    out_dir : path-like
        Tuning folder (created): per-trial folders and, without ``storage``, the study store.
    storage : str, optional
        Database URL shared by many machines (``postgresql://user@host:5432/db``; the password
        from ``~/.pgpass`` or ``PGPASSWORD``, never in the URL, which shows in process lists).
    study_name : str, optional
        Default :func:`default_study_name` (the space, plus the budget). Letters, digits,
        ``.``, ``_`` and ``-`` (:func:`ionfno.tuning.storage.check_study_name`).
    progress : bool
        Show a progress bar over finished trials.

    Returns
    -------
    TuneSummary

    Raises
    ------
    ValueError
        Bad settings, a study created with other settings, an unreachable storage.
    """
    import optuna

    data_path, out = Path(data_path), Path(out_dir)
    if not data_path.is_file():
        raise OSError(f"Dataset file {str(data_path)!r} does not exist")
    name = check_study_name(study_name or default_study_name(cfg))
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    if not os.access(out, os.W_OK):
        raise OSError(f"Tuning folder {str(out)!r} is not writable")
    url = storage or default_storage_url(out)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        # The heartbeat is experimental in optuna and warns when used with ask/tell, which is
        # what we do (with our own heartbeat thread).
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")
        try:
            return _tune(cfg, data_path, out, url, name, progress)
        except BaseException:
            # Settings refused before any trial ran (a bad base config, space, budget, jobs):
            # a folder this call created holds nothing of value; leave no empty tuning folder.
            if created and not (out / "trials").exists():
                shutil.rmtree(out, ignore_errors=True)
            raise


def _tune(cfg: TuneConfig, data_path: Path, out: Path, url: str, name: str, progress: bool) -> TuneSummary:
    from tqdm.auto import tqdm

    tuner = _Tuner(cfg, data_path, out, url, name, progress)
    write_json_atomic(
        out / "tune.json",
        {
            "study": name,
            "storage": redact_url(url),
            "dataset": str(data_path),
            "tune": asdict(cfg),
            "threads_per_trial": tuner.threads,
        },
    )
    import torch

    torch.set_num_threads(tuner.threads)
    if progress:
        tuner.bar = tqdm(total=cfg.trials, unit="trial", desc=f"tune {name}", dynamic_ncols=True)
    try:
        if cfg.jobs == 1:
            tuner.worker_loop()
        else:
            errors: list[BaseException] = []

            def run() -> None:
                try:
                    tuner.worker_loop()
                except BaseException as e:  # surface the first error in the main thread
                    errors.append(e)
                    tuner._stop(f"error: {e}")

            workers = [threading.Thread(target=run, name=f"tune-worker-{i}") for i in range(cfg.jobs)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            if errors:
                raise errors[0]
        with tuner.lock:
            c = count_trials(tuner.study)
            tuner._show(c)
    finally:
        if tuner.bar is not None:
            tuner.bar.close()
    best = _best(tuner.study)
    return TuneSummary(
        study_name=name,
        storage=redact_url(url),
        complete=c.complete,
        pruned=c.pruned,
        failed=c.failed,
        best_number=None if best is None else best.number,
        best_value=None if best is None else float(best.value),
        best_config=None if best is None else best.user_attrs.get("config"),
        stopped=tuner.stop_reason or "done",
        elapsed_s=time.monotonic() - tuner.start,
    )
