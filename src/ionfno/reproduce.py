"""One command from nothing to the study's table: generate, tune, train, evaluate, report.

The orchestrator stands above every stage (data, tuning, training, evaluation) and is the only
module that imports them all. ``ionfno reproduce MODEL --preset quick|cpu|paper --out DIR`` runs
:func:`reproduce`::

    DIR/reproduce.json          the resolved plan (a resumed run must have the same plan)
    DIR/data.h5                 1. generated dataset (ionfno.data.generate)
    DIR/tune-<space>/           2. tuning studies, when the preset tunes (constrained, unconstrained)
    DIR/runs/<label>/           3. training runs: "default" without tuning, else one per space
    DIR/reports/<label>/        4. evaluation reports (report.html, results.json, ...)
    DIR/summary.json, summary.md   5. every run's test error next to the study's numbers

Every stage is skipped when its output is complete, and the stages that write large outputs
resume themselves (dataset blocks, tuning trials, training checkpoints), so a killed run
started again with the same command picks up where it stopped.

Presets are JSON files in ``ionfno/presets/reproduce/`` (or any path)::

    {"description": "...",
     "data": {"n_train": 1000, "n_val": 125, "n_test": 125, "seed": 0, "n_points": null, "workers": 2},
     "tune": null | {"spaces": ["constrained", "unconstrained"], "trials": 8,
                     "overrides": ["train.epochs=5"], "pruner": "asha", "grace": 1, "threads": 2},
     "train": {"preset": "fhn-quick", "overrides": []},
     "default_run": false,
     "final_overrides": ["train.epochs=100"],
     "evaluate": {"speed_samples": 32, "reference_samples": 2, "ood_per_kind": 3, "threads": 1},
     "models": {"hh": {...}, "ord": {...}}}

``models[MODEL]`` is merged over the top level (nested dicts key by key). ``train.preset``
may contain ``{model}``. Without ``tune`` one run, labelled ``default``, trains the
``train`` config; with it, the best trial of each space is retrained with
``final_overrides`` (e.g. more epochs) under the space's label, and ``"default_run": true``
also trains the ``train`` config as ``default`` (the study's untuned column). ``tune.spaces``
is a list of space names (each its own label) or a mapping label -> space, e.g.
``{"constrained": "study-constrained"}``. :func:`resolve_plan` turns a preset into a typed
:class:`ReproducePlan`; its ``to_dict()`` is what ``reproduce.json`` holds.

A run whose ``train.workers x train.threads`` exceeds this machine's cores (or whose workers
exceed its GPUs) trains with as many data-parallel ranks as fit: a setting that does not change
results (:data:`ionfno.training.RESULT_FREE`).
"""

from __future__ import annotations

import copy
import json
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ._io import preset_names, read_preset_json

__all__ = [
    "ReproducePlan",
    "reproduce",
    "load_reproduce_preset",
    "list_reproduce_presets",
    "resolve_plan",
    "format_summary",
]

_TOP_KEYS = {"description", "data", "tune", "train", "default_run", "final_overrides", "evaluate", "models"}
_DATA_KEYS = {"n_train", "n_val", "n_test", "seed", "n_points", "workers", "mixture"}
_TUNE_KEYS = {
    "spaces",
    "trials",
    "overrides",
    "pruner",
    "grace",
    "reduction_factor",
    "threads",
    "jobs",
    "seed",
    "timeout",
    "base",
    "budget",
    "preset",
    "n_startup_trials",
    "base_first",
}
_TRAIN_KEYS = {"preset", "overrides"}
_EVAL_KEYS = {
    "speed_samples",
    "reference_samples",
    "ood_per_kind",
    "restitution_points",
    "threads",
    "which",
    "n_worst",
    "speed_repeats",
    "dpi",
}


# ---------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class DataStage:
    """Stage 1: the dataset to generate (``None``: the mixture's default)."""

    n_train: int | None = None
    n_val: int | None = None
    n_test: int | None = None
    seed: int = 0
    n_points: int | None = None
    workers: int | None = None  # None: min(2, cores)
    mixture: str | None = None


@dataclass(frozen=True)
class TuneStage:
    """Stage 2: one tuning study per search space, labelled."""

    spaces: dict[str, str]  # label -> space name or file
    preset: str | None  # tuning preset the settings start from (None: the defaults)
    settings: dict[str, Any]  # further TuneConfig fields (trials, pruner, overrides, ...)


@dataclass(frozen=True)
class TrainStage:
    """Stage 3: the untuned run's config (a preset and typed changes)."""

    preset: str
    changes: dict[str, Any]


@dataclass(frozen=True)
class ReproducePlan:
    """A reproduction preset resolved for one model (see the module docstring).

    Attributes
    ----------
    model, preset_name, description : str
    data : DataStage
    tune : TuneStage or None
        None: no tuning, one run labelled ``default``.
    train : TrainStage
    default_run : bool
        With tuning, also train ``train`` as ``default`` (the study's untuned column).
    final_changes : dict
        Typed config changes applied to every trained run (``final_overrides``).
    evaluate : EvaluateOptions
        Options shared by every report (label, compared runs and tuning folders added per run).
    """

    model: str
    preset_name: str
    description: str
    data: DataStage
    tune: TuneStage | None
    train: TrainStage
    default_run: bool
    final_changes: dict[str, Any]
    evaluate: Any
    _document: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The plan as written to ``reproduce.json`` (the merged preset, text as given)."""
        return copy.deepcopy(self._document)

    def default_config(self) -> Any:
        """The ``train`` stage's config with ``final_overrides``."""
        from .training import load_config, load_preset, with_changes

        src = self.train.preset
        cfg = load_config(src) if src.endswith(".json") else load_preset(src)
        return with_changes(with_changes(cfg, self.train.changes), self.final_changes)


def list_reproduce_presets() -> list[str]:
    """Names of the shipped reproduction presets."""
    return preset_names("reproduce")


def load_reproduce_preset(source: str | os.PathLike | Mapping[str, Any]) -> dict[str, Any]:
    """A reproduction preset by name, JSON path or dict (checked for unknown keys).

    Raises
    ------
    ValueError
        Unknown preset name (the message lists them), unreadable JSON or unknown keys.
    """
    if isinstance(source, Mapping):
        d = copy.deepcopy(dict(source))
    else:
        d = read_preset_json(str(source), "reproduce", "reproduction preset")
    _check_keys(d, _TOP_KEYS, "preset")
    for model, sub in (d.get("models") or {}).items():
        _check_keys(sub, _TOP_KEYS - {"models"}, f"preset.models.{model}")
    return d


def _check_keys(d: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise ValueError(f"Unknown key(s) {unknown} in {where}; expected some of {sorted(allowed)}")


def _merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(a))
    for k, v in b.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def resolve_plan(model: str, preset: str | os.PathLike | Mapping[str, Any]) -> ReproducePlan:
    """The preset with ``models[model]`` merged in and ``{model}`` substituted, validated and typed.

    Raises
    ------
    ValueError
        Unknown model, preset, keys, search-space labels or config overrides.
    """
    from .evaluation.pipeline import EvaluateOptions
    from .ionic import get_model
    from .training import parse_overrides

    get_model(model)  # unknown names fail here, listing the models
    d = load_reproduce_preset(preset)
    plan = _merge({k: v for k, v in d.items() if k != "models"}, (d.get("models") or {}).get(model, {}))
    plan["model"] = model
    plan["preset_name"] = preset if isinstance(preset, str) else "custom"
    data = plan.setdefault("data", {})
    _check_keys(data, _DATA_KEYS, "preset.data")
    tune = None
    if plan.get("tune"):
        _check_keys(plan["tune"], _TUNE_KEYS, "preset.tune")
        spaces = plan["tune"].get("spaces") or ["constrained", "unconstrained"]
        plan["tune"]["spaces"] = dict(spaces) if isinstance(spaces, Mapping) else list(spaces)
        settings = {k: v for k, v in plan["tune"].items() if k not in ("spaces", "preset") and v is not None}
        tune = TuneStage(_space_labels(plan["tune"]["spaces"]), plan["tune"].get("preset"), settings)
    train = plan.setdefault("train", {})
    _check_keys(train, _TRAIN_KEYS, "preset.train")
    if "preset" in train:
        train["preset"] = str(train["preset"]).replace("{model}", model)
    _check_keys(plan.setdefault("evaluate", {}), _EVAL_KEYS, "preset.evaluate")
    plan.setdefault("final_overrides", [])
    return ReproducePlan(
        model=model,
        preset_name=plan["preset_name"],
        description=str(plan.get("description", "")),
        data=DataStage(**data),
        tune=tune,
        train=TrainStage(
            str(train.get("preset", f"{model}-default")), parse_overrides(train.get("overrides", []))
        ),
        default_run=bool(plan.get("default_run", False)),
        final_changes=parse_overrides(plan["final_overrides"]),
        evaluate=EvaluateOptions(**plan["evaluate"], progress=False),
        _document=plan,
    )


def _space_labels(spaces: list[str] | Mapping[str, str]) -> dict[str, str]:
    """``tune.spaces`` as label -> space (a list labels each space by its own name)."""
    pairs = list(spaces.items()) if isinstance(spaces, Mapping) else [(str(s), s) for s in spaces]
    labels = [label for label, _ in pairs]
    if "default" in labels or len(set(labels)) != len(labels):
        raise ValueError(f"tune.spaces needs distinct labels other than 'default', got {labels}")
    if not all(isinstance(v, str) and v for _, v in pairs):
        raise ValueError(f"tune.spaces must name search spaces (strings), got {dict(pairs)}")
    return dict(pairs)


# ---------------------------------------------------------------------------- the stages
def _say(msg: str) -> None:
    print(f"ionfno reproduce: {msg}", file=sys.stderr, flush=True)


def _generate(plan: ReproducePlan, data_path: Path, progress: bool) -> None:
    if data_path.exists():
        _say(f"[data] {data_path} exists, skipped")
        return
    from .data.generate import generate_dataset, make_config

    d = plan.data
    gen = make_config(
        plan.model,
        mixture=d.mixture,
        n_train=d.n_train,
        n_val=d.n_val,
        n_test=d.n_test,
        seed=int(d.seed),
        n_points=d.n_points,
    )
    workers = int(d.workers if d.workers is not None else min(2, os.cpu_count() or 1))
    _say(f"[data] generating {data_path} ({workers} worker(s))")
    generate_dataset(gen, data_path, workers=workers, progress=progress)


def _tune(plan: ReproducePlan, root: Path, data_path: Path, device: str, progress: bool) -> tuple[dict, dict]:
    """The best config of every space (tuning what has not finished); label -> config, folder."""
    from ._io import write_json_atomic
    from .training import config_from_dict, with_changes
    from .tuning import TuneConfig, load_tune_preset, tune

    assert plan.tune is not None
    configs, dirs = {}, {}
    for label, space in plan.tune.spaces.items():
        tdir = root / f"tune-{space}"
        done = tdir / "reproduce-tune.json"
        dirs[label] = str(tdir)
        if done.exists():
            best = json.loads(done.read_text())["best_config"]
            _say(f"[tune] {space}: finished earlier, skipped")
        else:
            base = load_tune_preset(plan.tune.preset) if plan.tune.preset else TuneConfig()
            tc = replace(
                base, **plan.tune.settings, space=space, **({"device": device} if device != "auto" else {})
            )
            _say(f"[tune] {space}: {tc.trials} trials in {tdir}")
            summary = tune(tc, data_path, tdir, progress=progress)
            if summary.best_config is None:
                raise RuntimeError(f"Tuning {space} finished no trial ({summary.stopped}); see {tdir}")
            best = summary.best_config
            write_json_atomic(
                done,
                {
                    "best_config": best,
                    "best_value": summary.best_value,
                    "best_trial": summary.best_number,
                    "complete": summary.complete,
                    "pruned": summary.pruned,
                    "failed": summary.failed,
                },
            )
        configs[label] = with_changes(
            config_from_dict(best, source=f"best trial of {tdir}"), plan.final_changes
        )
    return configs, dirs


def _train(label: str, cfg: Any, data_path: Path, run_dir: Path, device: str, progress: bool) -> None:
    from .training import RunDir, train
    from .training.distributed import fit_local_ranks

    if RunDir(run_dir).finished():
        _say(f"[train] {label}: {run_dir} finished earlier, skipped")
        return
    cfg = fit_local_ranks(cfg, device)
    _say(
        f"[train] {label}: {cfg.train.epochs} epochs into {run_dir}"
        + (f" ({cfg.train.workers} ranks)" if cfg.train.workers > 1 else "")
    )
    train(cfg, data_path, run_dir, device=device, resume=True, progress=progress)


def _report_done(report_dir: Path, run_dir: Path) -> bool:
    from .training import RunDir

    res = report_dir / "results.json"
    if not (res.exists() and (report_dir / "report.html").exists()):
        return False
    run = RunDir(run_dir)
    return res.stat().st_mtime >= max(run.checkpoint(w).stat().st_mtime for w in ("best", "last"))


def _evaluate(
    plan: ReproducePlan, root: Path, labels: list[str], tune_dirs: dict[str, str]
) -> dict[str, Any]:
    """Report every run (reusing reports newer than their checkpoints); label -> summary row."""
    from .evaluation.pipeline import Evaluation, evaluate_run
    from .tuning.report import read_trials

    rows = {}
    for label in labels:
        rdir, rep = root / "runs" / label, root / "reports" / label
        if _report_done(rep, rdir):
            _say(f"[evaluate] {label}: {rep} is up to date, skipped")
            result = Evaluation.from_dict(json.loads((rep / "results.json").read_text()))
        else:
            _say(f"[evaluate] {label}: report into {rep}")
            opts = replace(
                plan.evaluate,
                run_label=label,
                compare_runs={k: str(root / "runs" / k) for k in labels},
                tuning_dirs=tune_dirs,
            )
            trials = {k: read_trials(d) for k, d in tune_dirs.items()}
            result = evaluate_run(rdir, root / "data.h5", rep, opts, tuning_trials=trials)
        rows[label] = {
            "rel_l2": result.rel_l2,
            "rel_l2_per_variable": result.rel_l2_per_variable,
            "epoch": result.epoch,
            "n_parameters": result.n_parameters,
            "report": str((rep / "report.html").resolve()),
        }
    return rows


def reproduce(
    model: str,
    preset: str | os.PathLike | Mapping[str, Any] = "quick",
    out: str | os.PathLike | None = None,
    *,
    device: str = "auto",
    progress: bool = True,
) -> dict[str, Any]:
    """Generate -> tune -> train -> evaluate -> report, skipping finished stages.

    Parameters
    ----------
    model : str
        Registry name (``"fhn"``, ``"hh"``, ``"ord"``, ...).
    preset : str, path or dict
        Reproduction preset (``quick``, ``cpu``, ``paper`` or a JSON file/dict; see the module
        docstring).
    out : path-like, optional
        Output folder (default ``reproduce-<model>-<preset>``).
    device : {"auto", "cpu", "cuda"}
        Where to train and tune.
    progress : bool
        Progress bars.

    Returns
    -------
    dict
        The summary (what ``summary.json`` holds): per run label, the study metric overall and
        per variable, the study's numbers, and the report path.

    Raises
    ------
    ValueError
        Unknown model or preset, or ``out`` holds a run of another plan.
    """
    from ._io import atomic_path, write_json_atomic
    from .evaluation.study import study_results

    plan = resolve_plan(model, preset)
    name = plan.preset_name
    root = Path(out) if out is not None else Path(f"reproduce-{model}-{Path(name).stem}")
    root.mkdir(parents=True, exist_ok=True)
    document = plan.to_dict()
    plan_path = root / "reproduce.json"
    if plan_path.exists():
        old = json.loads(plan_path.read_text())
        diffs = sorted(
            k
            for k in set(old) | set(document)
            if k not in ("preset_name", "description") and old.get(k) != document.get(k)
        )
        if diffs:
            raise ValueError(
                f"{str(root)!r} holds a reproduction with another plan (differs in {diffs}); "
                "use the same preset or a new --out folder"
            )
    write_json_atomic(plan_path, document)
    t_start = time.perf_counter()
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    data_path = root / "data.h5"
    _generate(plan, data_path, progress)
    timings["data_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    runs: dict[str, Any] = {}
    tune_dirs: dict[str, str] = {}
    if plan.tune is None or plan.default_run:
        runs["default"] = plan.default_config()
    if plan.tune is not None:
        tuned, tune_dirs = _tune(plan, root, data_path, device, progress)
        runs.update(tuned)
    timings["tune_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    for label, cfg in runs.items():
        _train(label, cfg, data_path, root / "runs" / label, device, progress)
    timings["train_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    summary: dict[str, Any] = {"model": model, "preset": name, "out": str(root.resolve())}
    summary["runs"] = _evaluate(plan, root, list(runs), tune_dirs)
    timings["evaluate_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - t_start
    summary["study"] = study_results(model)
    summary["timings_this_invocation"] = timings
    write_json_atomic(root / "summary.json", summary)
    with atomic_path(root / "summary.md") as tmp:
        tmp.write_text(format_summary(summary))
    return summary


def format_summary(summary: Mapping[str, Any]) -> str:
    """A short Markdown table of the runs, each next to the study's number for the same column."""
    study = summary.get("study") or {}
    lines = [
        f"# ionfno reproduce {summary['model']} ({summary['preset']})",
        "",
        "| run | test error (study metric) | epochs | parameters | study, same column |",
        "|---|---|---|---|---|",
    ]
    for label, r in summary["runs"].items():
        ref = study.get(label)
        ref_text = (
            "-" if ref is None else f"{'about ' if ref.get('approx') else ''}{100 * ref['overall']:.3g} %"
        )
        ours = f"{100 * r['rel_l2']:.3g} %"
        lines.append(f"| {label} | {ours} | {r.get('epoch')} | {r.get('n_parameters')} | {ref_text} |")
    lines += ["", "Reports: " + ", ".join(f"{k}: {r['report']}" for k, r in summary["runs"].items()), ""]
    return "\n".join(lines)
