"""Evaluate a trained run on a dataset: metrics, biomarkers, speed, out-of-distribution, report.

:func:`evaluate_run` is what ``ionfno evaluate RUN_DIR --data DATA --out REPORT_DIR`` calls:

1. load the surrogate (:class:`ionfno.surrogate.Surrogate`) and the evaluated split, on the
   surrogate's grid (every ``subsample``-th stored point);
2. compute the training split's point-wise mean and std on that grid (the study's
   normaliser, recomputed from the data so that the metric means the same thing whatever
   normaliser the run trained with);
3. every metric per variable and dataset part (:mod:`~ionfno.evaluation.metrics`) and the
   membrane-potential biomarkers (:mod:`~ionfno.evaluation.biomarkers`);
4. speed: the surrogate, the fast solver and the SciPy reference on the same stimuli;
5. out of distribution: the held-out benchmark of :mod:`~ionfno.evaluation.heldout` (fixed-seed
   shifted pulses, pulse pairs, pacing trains, S1-S2 pairs, random currents; the same inputs
   for every surrogate of a model) and the S1-S2 restitution curve;
6. figures and the report folder (:mod:`~ionfno.evaluation.report`).

It returns an :class:`Evaluation`, whose ``to_dict()`` is ``results.json``. Evaluation stands on
the training stage (the run folder, the surrogate) and below it, never on the stages that
use it: the orchestrator (:mod:`ionfno.reproduce`) or the CLI reads tuning folders and hands
their trial values in (``tuning_trials``).
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from .biomarkers import Biomarkers, compare_biomarkers, compute_biomarkers
from .metrics import ErrorTable, compute_errors

__all__ = [
    "EvaluateOptions",
    "Evaluation",
    "evaluate_run",
    "training_statistics",
    "measure_speed",
    "BIOMARKER_DEFINITIONS",
]

BIOMARKER_DEFINITIONS = (
    "Biomarkers of the first action potential of V: rest = V(0); fires = V exceeds the model's firing "
    "threshold (the datasets' definition); peak = max V of the first AP; upstroke time = upward crossing of "
    "rest + 50 % of the amplitude (linear interpolation); APD50/APD90 = from the upstroke time to the "
    "downward "
    "crossing of rest + 50 % / 10 % of the amplitude. Errors over the samples where both the solver and the "
    "FNO fire."
)


@dataclass
class EvaluateOptions:
    """Settings of one evaluation (none of them changes the surrogate or the data)."""

    # Checkpoint of the run: "best" (best validation) or "last" (the study kept the last epoch).
    which: str = "best"
    # Dataset split evaluated.
    split: str = "test"
    # Worst samples listed in the report.
    n_worst: int = 10
    # Speed: samples predicted by the surrogate and solved by the fast solver; the SciPy
    # reference solves the first `reference_samples` of them (it is slow). 0 skips a method.
    speed_samples: int = 64
    reference_samples: int = 4
    # Surrogate timing: best of this many repeats (after one warm-up call).
    speed_repeats: int = 3
    # torch intra-op threads during the evaluation (recorded in the report).
    threads: int = 1
    # Out-of-distribution checks: samples per kind of stimulus (0 skips them).
    ood_per_kind: int = 3
    # Solver for the out-of-distribution truth (None: the general mixture's settings, as
    # `ionfno heldout`).
    truth_method: str | None = None
    # S1-S2 coupling intervals of the restitution curve (0 skips it; needs ood_per_kind > 0).
    restitution_points: int = 12
    # Seed of the held-out draws (None: the benchmark's fixed HELDOUT_SEED, as `ionfno heldout`).
    seed: int | None = None
    # Resolution of the embedded figures.
    dpi: int = 80
    # Extra runs whose loss curves are overlaid (label -> run folder), e.g. constrained and
    # unconstrained; this run is always drawn as `run_label`.
    compare_runs: dict[str, str] = field(default_factory=dict)
    # Tuning folders (label -> folder) whose trial history is plotted (recorded; the trial
    # values come in through evaluate_run's `tuning_trials`).
    tuning_dirs: dict[str, str] = field(default_factory=dict)
    # Name of this run in tables and legends ("constrained", "unconstrained", "default", ...).
    run_label: str = "this run"
    # Page title (default from the model and run).
    title: str = ""
    # Show progress bars of the solvers.
    progress: bool = False

    def __post_init__(self) -> None:
        if self.which not in ("best", "last"):
            raise ValueError(f"which must be 'best' or 'last', got {self.which!r}")
        if self.split not in ("train", "val", "test"):
            raise ValueError(f"split must be one of ['train', 'val', 'test'], got {self.split!r}")
        for name in ("n_worst", "speed_samples", "reference_samples", "ood_per_kind", "restitution_points"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("speed_repeats", "threads", "dpi"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


# ---------------------------------------------------------------------------- data
def training_statistics(
    data_path: str | os.PathLike,
    *,
    subsample: int = 1,
    n_train: int | None = None,
    only_ok: bool = True,
    block: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Point-wise mean and unbiased std of every state over the training split (float64).

    Streams the split in blocks (ORd's training split does not fit in memory twice).

    Parameters
    ----------
    data_path : path-like
        Dataset file.
    subsample : int
        Keep every ``subsample``-th stored time point (the run's ``data.subsample``).
    n_train : int, optional
        Use the first ``n_train`` stored samples (the run's ``data.n_train``), as training does.
    only_ok : bool
        Skip failed samples, as training does.
    block : int, optional
        Samples read at once (default: about 200 MB of float64 per block).

    Returns
    -------
    mean, std : ndarray, shape (n_states, N_sub)
    """
    from ..data.storage import dataset_info, read_split

    info = dataset_info(data_path)
    n = info["sizes"]["train"]
    if block is None:
        block = max(1, int(2e8 // (8 * info["n_states"] * info["n_points"])))
    if n_train is not None:
        n = min(n, int(n_train))
    s1 = s2 = None
    count = 0
    for start in range(0, n, block):
        arr = read_split(
            data_path,
            "train",
            dtype=np.float64,
            only_ok=only_ok,
            indices=np.arange(start, min(n, start + block)),
        )["states"][:, :, ::subsample]
        if s1 is None:
            s1 = np.zeros(arr.shape[1:])
            s2 = np.zeros(arr.shape[1:])
        # Shifted sums (shift = first sample) keep the variance accurate for large means (ORd K_i).
        if count == 0 and arr.shape[0]:
            shift = arr[0].copy()
        if arr.shape[0]:
            d = arr - shift
            s1 += d.sum(axis=0)
            s2 += (d**2).sum(axis=0)
            count += arr.shape[0]
    if count < 2 or s1 is None:
        raise ValueError(f"The training split of {str(data_path)!r} has {count} usable samples; need >= 2")
    mean_d = s1 / count
    var = np.maximum(s2 - count * mean_d**2, 0.0) / (count - 1)
    return mean_d + shift, np.sqrt(var)


def _read_eval_split(data_path: Path, split: str, subsample: int) -> dict[str, Any]:
    from ..data.storage import open_dataset, read_split

    # Signals are stored as float32: read them so (ORd's test split is 0.6 GB as float32) and
    # cast the kept points to float64; the grid is read as stored (float64).
    arrays = read_split(data_path, split, dtype=np.float32, only_ok=True)
    if arrays["states"].shape[0] == 0:
        raise ValueError(f"Split {split!r} of {str(data_path)!r} has no usable samples")
    with open_dataset(data_path) as f:
        t = np.asarray(f["t"][()], dtype=np.float64)
    out = dict(arrays)
    out["t_stored"] = t
    out["t"] = t[::subsample]
    out["i_app"] = arrays["i_app"][:, ::subsample].astype(np.float64)
    out["states"] = arrays["states"][:, :, ::subsample].astype(np.float64)
    return out


def _model_input(sur: Any, stimulus: Any, i_app_points: np.ndarray) -> np.ndarray:
    """The surrogate's input for ``stimulus``: its point samples as given, or its cell means."""
    return i_app_points if sur.input_encoding == "point" else sur.encode(stimulus)


# ---------------------------------------------------------------------------- speed
def measure_speed(
    surrogate: Any,
    model: Any,
    stimulus: Any,
    *,
    t_end: float,
    n_points: int,
    subsample: int,
    n_surrogate: int,
    n_fast: int,
    n_reference: int,
    fast_method: str = "fast",
    fast_kwargs: Mapping[str, Any] | None = None,
    repeats: int = 3,
    threads: int = 1,
    progress: bool = False,
) -> dict[str, Any]:
    """Wall time per sample of the surrogate, the fast solver and the SciPy reference.

    All three get the first samples of the same stimuli; the solvers integrate on the stored
    grid ``linspace(0, t_end, n_points)`` (what generating a dataset costs), the surrogate
    predicts every state on its own grid (every ``subsample``-th point) in batches.

    Parameters
    ----------
    surrogate : ionfno.surrogate.Surrogate
    model : IonicModel
    stimulus : ionfno.stimulus.Stimulus
        At least ``max(n_surrogate, n_fast, n_reference)`` samples.
    n_surrogate, n_fast, n_reference : int
        Samples per method (0 skips it); the reference solves the first ``n_reference``.
    fast_method, fast_kwargs
        Solver of the fast column and its settings (the dataset's, by default ``"fast"``).
    repeats : int
        The surrogate's time is the best of ``repeats`` calls after one warm-up call.
    threads : int
        torch intra-op threads during the surrogate calls.

    Returns
    -------
    dict
        ``methods``: {name: {n_samples, seconds_total, seconds_per_sample,
        speedup_of_surrogate}}, ``threads``, ``note``.
    """
    import torch

    from ..solvers import simulate

    out: dict[str, Any] = {"methods": {}}
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        if n_surrogate:
            sel = stimulus.select(slice(0, n_surrogate))
            i_app = _model_input(surrogate, sel, sel.sample(np.linspace(0.0, t_end, n_points))[:, ::subsample])
            surrogate.predict_array(i_app[:1])  # warm-up (allocations, lazy init)
            best = np.inf
            for _ in range(repeats):
                t0 = time.perf_counter()
                surrogate.predict_array(i_app)
                best = min(best, time.perf_counter() - t0)
            out["methods"]["surrogate (FNO)"] = {
                "n_samples": n_surrogate,
                "seconds_total": best,
                "seconds_per_sample": best / n_surrogate,
            }
    finally:
        torch.set_num_threads(prev_threads)
    for name, n, method, kw in (
        ("fast solver (" + fast_method + ")", n_fast, fast_method, dict(fast_kwargs or {})),
        ("SciPy reference (BDF)", n_reference, "reference", {}),
    ):
        if not n:
            continue
        sel = stimulus.select(slice(0, n))
        t0 = time.perf_counter()
        traj = simulate(model, sel, t_end=t_end, n_points=n_points, method=method, progress=progress, **kw)
        wall = time.perf_counter() - t0
        out["methods"][name] = {
            "n_samples": n,
            "seconds_total": wall,
            "seconds_per_sample": wall / n,
            "n_failed": int(np.sum(traj.status != 0)),
        }
    sur = out["methods"].get("surrogate (FNO)")
    for v in out["methods"].values():
        v["speedup_of_surrogate"] = (v["seconds_per_sample"] / sur["seconds_per_sample"]) if sur else None
    out["threads"] = {"torch": threads, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}
    out["note"] = (
        f"Measured in one process, one after the other, on the same stimuli (the first samples of the "
        f"split); surrogate: best of {repeats} batched calls after a warm-up, {threads} torch thread(s), "
        "all states on its grid; solvers: one call each on the stored grid. The solvers are numpy code "
        "(single-threaded with OMP_NUM_THREADS=1). Timings on a shared machine are noisy: compare the "
        "ratios within one report."
    )
    return out


def _dataset_solver(info: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The generation solver's method and settings recorded in the dataset, if any."""
    cfg = info.get("config") or {}
    solver = cfg.get("solver") if isinstance(cfg, Mapping) else None
    if not isinstance(solver, Mapping):
        return "fast", {}
    kw = {k: solver[k] for k in ("rtol", "atol", "dt", "max_steps") if solver.get(k) is not None}
    if isinstance(kw.get("atol"), list):
        kw["atol"] = np.asarray(kw["atol"], dtype=np.float64)
    return str(solver.get("method", "fast")), kw


# ---------------------------------------------------------------------------- out of distribution
def _heldout(sur: Any, opt: EvaluateOptions, stats: tuple[np.ndarray, np.ndarray],
             prev_threads: int) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]], dict[str, Any] | None]:
    """The held-out benchmark with ``opt.ood_per_kind`` samples per kind, and the restitution
    curve: ``(ood, traces for the figure, restitution or None)``."""
    import torch

    from .heldout import HELDOUT_SEED, evaluate_heldout, restitution_curve

    solver = {"method": opt.truth_method} if opt.truth_method else None
    torch.set_num_threads(opt.threads)
    try:
        seed = HELDOUT_SEED if opt.seed is None else opt.seed
        r = evaluate_heldout(sur, n_per_kind=opt.ood_per_kind, seed=seed, statistics=stats, solver=solver)
        rest = restitution_curve(sur, n=opt.restitution_points, solver=solver) if opt.restitution_points else None
    finally:
        torch.set_num_threads(prev_threads)
    traces = r.pop("traces")
    plot = {k: {"i_app": v["i_app"][:4], "true": v["true"][:4], "pred": v["pred"][:4]} for k, v in traces.items()}
    if rest is not None:
        r["restitution"] = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in rest.items()}
    r["note"] = (
        f"The held-out benchmark (ionfno heldout; seed {seed}, {opt.ood_per_kind} per kind here, "
        "16 by default there): protocols from the model's general mixture, truth from "
        f"{'the ' + opt.truth_method + ' solver' if opt.truth_method else 'its solver settings'}; "
        "errors in the study's normalised space with the training statistics; APD90 per beat "
        "(the window cut at every pulse onset) where solver and surrogate both fire."
    )
    return r, plot, rest


# ---------------------------------------------------------------------------- the evaluation
def _env() -> dict[str, Any]:
    import torch

    from .. import __version__

    return {
        "ionfno": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
    }


def _provenance(data_path: Path, info: Mapping[str, Any]) -> dict[str, Any]:
    st = data_path.stat()
    keep = (
        "format",
        "format_version",
        "model",
        "model_version",
        "seed",
        "ionfno_version",
        "sizes",
        "n_points",
        "n_states",
        "time_unit",
        "current_unit",
        "config",
        "created",
    )
    return {
        "path": str(data_path.resolve()),
        "bytes": st.st_size,
        "modified": _dt.datetime.fromtimestamp(st.st_mtime, _dt.UTC).isoformat(timespec="seconds"),
        **{k: info[k] for k in keep if k in info},
    }


def _pick_plot_samples(table: ErrorTable) -> list[tuple[int, str]]:
    """Worst overall, median overall and the median sample of every part (no repeats)."""
    err = table.sample_overall("rel_l2")
    finite = np.where(np.isfinite(err), err, np.inf)
    picks: list[tuple[int, str]] = []

    def median_of(mask: np.ndarray) -> int | None:
        idx = np.flatnonzero(mask & np.isfinite(err))
        if idx.size == 0:
            return None
        return int(idx[np.argsort(err[idx])[idx.size // 2]])

    picks.append((int(table.worst(1)[0]), "worst sample"))
    m = median_of(np.ones_like(finite, dtype=bool))
    if m is not None:
        picks.append((m, "median sample"))
    for p in table.part_names():
        m = median_of(table.parts == p)
        if m is not None:
            picks.append((m, f"median sample of part {p}"))
    seen: set[int] = set()
    out = []
    for i, why in picks:
        if i not in seen:
            seen.add(i)
            out.append((i, why))
    return out


@dataclass
class Evaluation:
    """What :func:`evaluate_run` returns; :meth:`to_dict` is ``results.json`` (without the figure
    list the report adds).

    ``metrics`` is :meth:`ErrorTable.summary`: per dataset part (``"all"`` included), per metric
    (``rel_l2`` is the study's), the overall value and one per variable. The other fields
    describe the run, the data, the biomarkers, speed, out-of-distribution checks, the options
    and the environment, as their names say.
    """

    title: str
    model: str
    run_dir: str
    run_label: str
    checkpoint: str
    epoch: int
    n_parameters: int | None
    data_path: str
    split: str
    created: str
    ionfno_version: str
    state_names: list[str]
    state_units: list[str]
    time_unit: str
    current_unit: str
    ranges: dict[str, float]
    metrics: dict[str, Any]
    study: dict[str, Any]
    biomarkers: dict[str, Any]
    worst_samples: list[dict[str, Any]]
    speed: dict[str, Any] | None
    ood: dict[str, Any] | None
    config: dict[str, Any]
    options: dict[str, Any]
    data_provenance: dict[str, Any]
    environment: dict[str, Any]

    @property
    def rel_l2(self) -> float:
        """The study's metric over the evaluated split."""
        return float(self.metrics["all"]["rel_l2"]["overall"])

    @property
    def rel_l2_per_variable(self) -> dict[str, float]:
        return dict(self.metrics["all"]["rel_l2"]["per_variable"])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Evaluation:
        """Read back a ``results.json`` (keys it does not know, such as ``figures``, are left out)."""
        return cls(**{f.name: d[f.name] for f in fields(cls)})


def evaluate_run(
    run_dir: str | os.PathLike,
    data_path: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    options: EvaluateOptions | None = None,
    *,
    tuning_trials: Mapping[str, list[tuple[int, float | None]]] | None = None,
) -> Evaluation:
    """Evaluate a run folder on a dataset and write the report (see the module docstring).

    Parameters
    ----------
    run_dir : path-like
        Training run folder (``best.pt``/``last.pt``, ``metrics.csv``).
    data_path : path-like
        Dataset file the run was trained on (its training split gives the normaliser
        statistics of the study's metric).
    out_dir : path-like, optional
        Report folder; None computes without writing.
    options : EvaluateOptions, optional
    tuning_trials : mapping, optional
        Label -> (trial number, objective or None) of each tuning study to plot
        (``ionfno.tuning.report.read_trials`` of a tuning folder).

    Returns
    -------
    Evaluation
        The results (``to_dict()`` is what ``results.json`` holds).

    Raises
    ------
    ValueError
        The dataset does not match the run (model, states or grid), or bad options.
    FileNotFoundError
        Missing run folder, checkpoint or dataset.
    """
    import torch

    from .. import __version__
    from ..data.biomarkers import firing_threshold
    from ..data.encoding import stored_stimulus
    from ..data.storage import dataset_info
    from ..ionic import get_model
    from ..surrogate import Surrogate
    from ..training import RunDir
    from . import plots

    opt = options or EvaluateOptions()
    run_dir, data_path = Path(run_dir), Path(data_path)
    if not data_path.exists():
        raise FileNotFoundError(f"No dataset file {str(data_path)!r}")
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(opt.threads)
    try:
        sur = Surrogate.load(run_dir, which=opt.which)
    finally:
        torch.set_num_threads(prev_threads)
    info = dataset_info(data_path)
    names = [str(s) for s in info["state_names"]]
    if names != list(sur.state_names) or str(info.get("model")) != sur.model_name:
        raise ValueError(
            f"Dataset {str(data_path)!r} ({info.get('model')}, states {names}) does not match the run "
            f"{str(run_dir)!r} ({sur.model_name}, states {list(sur.state_names)})"
        )
    sub = int(sur.info["subsample"])
    data = _read_eval_split(data_path, opt.split, sub)
    if data["t"].shape != sur.t.shape or not np.allclose(data["t"], sur.t, rtol=1e-9, atol=1e-12):
        raise ValueError(
            f"The dataset's grid ({info['n_points']} points, subsample {sub}) differs from the run's "
            f"({sur.info['n_points_stored']} stored points over T = {sur.t_end:g})"
        )
    model = get_model(sur.model_name)
    units = [str(u) for u in info.get("state_units", model.state_units)]
    cfg = sur.config

    # --- predictions and the study's metric
    torch.set_num_threads(opt.threads)
    try:
        # The stored protocols (pulse trains, S1-S2 pairs, waveforms), not only the first pulse.
        stim_data = stored_stimulus(data)
        pred = sur.predict_array(_model_input(sur, stim_data, data["i_app"]))
    finally:
        torch.set_num_threads(prev_threads)
    mean, std = training_statistics(
        data_path, subsample=sub, n_train=cfg.data.n_train, only_ok=cfg.data.only_ok
    )
    table = compute_errors(
        pred, data["states"], mean=mean, std=std, state_names=names, state_units=units, parts=data["part"]
    )
    summary = table.summary()

    # --- biomarkers of V
    iv = model.state_index("V")
    thr = firing_threshold(sur.model_name)
    bm_true = compute_biomarkers(data["states"][:, iv], data["t"], threshold=thr)
    bm_pred = compute_biomarkers(pred[:, iv], data["t"], threshold=thr)
    bm_cmp = compare_biomarkers(bm_true, bm_pred)

    # --- worst samples
    overall = table.sample_overall("rel_l2")
    worst = []
    for rank, i in enumerate(table.worst(opt.n_worst), start=1):
        row = table.per_sample["rel_l2"][i]
        wv = names[int(np.nanargmax(row))] if np.isfinite(row).any() else ""
        worst.append(
            {
                "rank": rank,
                "index": int(data["index"][i]),
                "part": str(data["part"][i]),
                "amplitude": float(data["amplitude"][i]),
                "duration": float(data["duration"][i]),
                "onset": float(data["onset"][i]),
                "rel_l2": float(overall[i]),
                "worst_variable": wv,
                "worst_variable_rel_l2": float(np.nanmax(row)) if wv else None,
            }
        )

    # --- speed on the split's own stimuli
    method, solver_kw = _dataset_solver(info)
    n_avail = stim_data.batch_size
    speed = None
    if opt.speed_samples or opt.reference_samples:
        speed = measure_speed(
            sur,
            model,
            stim_data,
            t_end=sur.t_end,
            n_points=int(info["n_points"]),
            subsample=sub,
            n_surrogate=min(opt.speed_samples, n_avail),
            n_fast=min(opt.speed_samples, n_avail),
            n_reference=min(opt.reference_samples, n_avail),
            fast_method=method,
            fast_kwargs=solver_kw,
            repeats=opt.speed_repeats,
            threads=opt.threads,
            progress=opt.progress,
        )

    # --- out of distribution: the held-out benchmark (fixed seed, ionfno.evaluation.heldout)
    ood = None
    ood_plot: dict[str, dict[str, np.ndarray]] = {}
    restitution = None
    if opt.ood_per_kind:
        ood, ood_plot, restitution = _heldout(sur, opt, (mean, std), prev_threads)

    # --- figures
    figures: dict[str, tuple[Any, str]] = {}
    t = data["t"]
    for k, (i, why) in enumerate(_pick_plot_samples(table)):
        cap = (
            f"{why}: test index {int(data['index'][i])}, part {data['part'][i]}, "
            f"A = {data['amplitude'][i]:.4g}, T_stim = {data['duration'][i]:.4g}, "
            f"onset = {data['onset'][i]:.4g}; rel. L2 {100 * overall[i]:.3g} %"
        )
        figures[f"trajectories_{k}"] = (
            plots.plot_trajectories(
                t,
                data["states"][i],
                pred[i],
                names,
                units,
                title=cap,
                time_unit=model.time_unit,
                i_app=data["i_app"][i],
                current_unit=model.current_unit,
            ),
            cap,
        )
    study_pv: dict[str, float] = {}
    from .study import study_results

    for col in ("constrained", "unconstrained", "default"):
        pv = study_results(sur.model_name).get(col, {}).get("per_variable")
        if pv and (opt.run_label == col or not study_pv):
            study_pv = pv
    figures["error_per_variable"] = (
        plots.plot_error_per_variable(
            summary["all"]["rel_l2"]["per_variable"],
            study=study_pv or None,
            title="study metric per variable (test)",
        ),
        "Relative L2 error per variable (normalised space); dots: the "
        "study's published per-variable values where it gives them.",
    )
    figures["error_distribution"] = (
        plots.plot_error_distributions({p: overall[table.parts == p] for p in table.part_names()}),
        "Distribution of the per-sample error (mean over variables) by dataset part.",
    )
    histories = {opt.run_label: RunDir(run_dir).history()}
    for label, d in opt.compare_runs.items():
        if Path(d).resolve() != run_dir.resolve():
            histories[label] = RunDir(d).history()
    if any(histories.values()):
        figures["loss_curves"] = (
            plots.plot_loss_curves(histories),
            "Training (dotted) and validation (solid) loss "
            "per epoch" + (" of the runs compared" if len(histories) > 1 else ""),
        )
    trials = dict(tuning_trials or {})
    if any(trials.values()):
        figures["tuning_history"] = (
            plots.plot_tuning_history(trials),
            "Objective of each tuning trial and the best so far, per search space.",
        )
    if bm_cmp["both_fire"]:
        figures["biomarkers"] = (
            plots.plot_biomarker_scatter(bm_true, bm_pred, time_unit=model.time_unit, v_unit=units[iv]),
            "Biomarkers predicted against true, samples where both fire.",
        )
    if ood_plot:
        figures["ood"] = (
            plots.plot_ood(t, ood_plot, v_name=names[iv], v_unit=units[iv], time_unit=model.time_unit),
            "V under the held-out protocols (first 4 samples of each kind): solid solver, dashed FNO; "
            "top row the current.",
        )
    if restitution is not None:
        figures["restitution"] = (
            plots.plot_restitution({opt.run_label: restitution}, time_unit=model.time_unit),
            "S1-S2 restitution: APD90 of the S2 beat against the coupling interval, solver and FNO.",
        )

    result = Evaluation(
        title=opt.title or f"ionfno evaluation: {sur.model_name}, {opt.run_label}",
        model=sur.model_name,
        run_dir=str(run_dir.resolve()),
        run_label=opt.run_label,
        checkpoint=opt.which,
        epoch=sur.epoch,
        n_parameters=_n_parameters(run_dir, opt.which),
        data_path=str(data_path.resolve()),
        split=opt.split,
        created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        ionfno_version=__version__,
        state_names=names,
        state_units=units,
        time_unit=model.time_unit,
        current_unit=model.current_unit,
        ranges=dict(zip(names, table.ranges.tolist(), strict=True)),
        metrics=summary,
        study=study_results(sur.model_name),
        biomarkers={"threshold": thr, "comparison": bm_cmp, "definitions": BIOMARKER_DEFINITIONS},
        worst_samples=worst,
        speed=speed,
        ood=ood,
        config=asdict(cfg),
        options=asdict(opt),
        data_provenance=_provenance(data_path, info),
        environment=_env(),
    )
    if out_dir is not None:
        from .report import write_report

        write_report(out_dir, result.to_dict(), figures, metric_rows=table.rows(), dpi=opt.dpi)
    for fig, _ in figures.values():
        fig.clear()
    return result


def _n_parameters(run_dir: Path, which: str) -> int | None:
    """The parameter count a checkpoint records (None if it cannot be read)."""
    from ..training import RunDir

    try:
        return RunDir(run_dir).load(which).get("n_parameters")
    except (OSError, ValueError):
        return None


def biomarker_table(bm: Biomarkers) -> dict[str, list[Any]]:
    """Per-sample biomarkers as lists (for CSV/JSON)."""
    return {k: np.asarray(v).tolist() for k, v in bm.as_dict().items()}
