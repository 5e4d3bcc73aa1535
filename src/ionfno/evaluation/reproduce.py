"""One command from nothing to the study's table: generate, tune, train, evaluate, report.

``ionfno reproduce MODEL --preset quick|cpu|paper --out DIR`` runs :func:`reproduce`::

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
``{"constrained": "study-constrained"}``.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._io import preset_names, read_preset_json

__all__ = ["reproduce", "load_reproduce_preset", "list_reproduce_presets", "resolve_plan"]

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
    "threads",
    "which",
    "n_worst",
    "speed_repeats",
    "dpi",
}


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


def resolve_plan(model: str, preset: str | os.PathLike | Mapping[str, Any]) -> dict[str, Any]:
    """The preset with ``models[model]`` merged in and ``{model}`` substituted; validated.

    Raises
    ------
    ValueError
        Unknown model, preset or keys.
    """
    from ..ionic import get_model

    get_model(model)  # unknown names fail here, listing the models
    d = load_reproduce_preset(preset)
    plan = _merge({k: v for k, v in d.items() if k != "models"}, (d.get("models") or {}).get(model, {}))
    plan["model"] = model
    plan["preset_name"] = preset if isinstance(preset, str) else "custom"
    data = plan.setdefault("data", {})
    _check_keys(data, _DATA_KEYS, "preset.data")
    if plan.get("tune"):
        _check_keys(plan["tune"], _TUNE_KEYS, "preset.tune")
        spaces = plan["tune"].get("spaces") or ["constrained", "unconstrained"]
        plan["tune"]["spaces"] = dict(spaces) if isinstance(spaces, Mapping) else list(spaces)
        _space_labels(plan["tune"]["spaces"])  # checked here, before any work
    train = plan.setdefault("train", {})
    _check_keys(train, _TRAIN_KEYS, "preset.train")
    if "preset" in train:
        train["preset"] = str(train["preset"]).replace("{model}", model)
    _check_keys(plan.setdefault("evaluate", {}), _EVAL_KEYS, "preset.evaluate")
    plan.setdefault("final_overrides", [])
    return plan


def _space_labels(spaces: list[str] | Mapping[str, str]) -> dict[str, str]:
    """``tune.spaces`` as label -> space (a list labels each space by its own name)."""
    pairs = list(spaces.items()) if isinstance(spaces, Mapping) else [(str(s), s) for s in spaces]
    labels = [label for label, _ in pairs]
    if "default" in labels or len(set(labels)) != len(labels):
        raise ValueError(f"tune.spaces needs distinct labels other than 'default', got {labels}")
    if not all(isinstance(v, str) and v for _, v in pairs):
        raise ValueError(f"tune.spaces must name search spaces (strings), got {dict(pairs)}")
    return dict(pairs)


def _default_config(plan: Mapping[str, Any], model: str) -> Any:
    """The ``train`` section's config (its preset plus overrides, then ``final_overrides``)."""
    from ..training import apply_overrides, load_config, load_preset

    tr = plan["train"]
    src = tr.get("preset", f"{model}-default")
    cfg = load_config(src) if str(src).endswith(".json") else load_preset(src)
    return apply_overrides(cfg, list(tr.get("overrides", [])) + list(plan["final_overrides"]))


def _say(msg: str) -> None:
    print(f"ionfno reproduce: {msg}", file=sys.stderr, flush=True)


def _run_finished(run_dir: Path) -> bool:
    from ..training.checkpoint import load_checkpoint

    last = run_dir / "last.pt"
    if not (last.exists() and (run_dir / "best.pt").exists()):
        return False
    try:
        return bool(load_checkpoint(last, map_location="cpu").get("finished", False))
    except (OSError, ValueError):
        return False


def _report_done(report_dir: Path, run_dir: Path) -> bool:
    res = report_dir / "results.json"
    if not (res.exists() and (report_dir / "report.html").exists()):
        return False
    return res.stat().st_mtime >= max(p.stat().st_mtime for p in (run_dir / "best.pt", run_dir / "last.pt"))


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
    from .._io import atomic_path, write_json_atomic
    from .pipeline import EvaluateOptions, evaluate_run

    plan = resolve_plan(model, preset)
    name = plan["preset_name"] if isinstance(plan["preset_name"], str) else "custom"
    root = Path(out) if out is not None else Path(f"reproduce-{model}-{Path(name).stem}")
    root.mkdir(parents=True, exist_ok=True)
    plan_path = root / "reproduce.json"
    if plan_path.exists():
        old = json.loads(plan_path.read_text())
        diffs = sorted(
            k
            for k in set(old) | set(plan)
            if k not in ("preset_name", "description") and old.get(k) != plan.get(k)
        )
        if diffs:
            raise ValueError(
                f"{str(root)!r} holds a reproduction with another plan (differs in {diffs}); "
                "use the same preset or a new --out folder"
            )
    write_json_atomic(plan_path, plan)
    t_start = time.perf_counter()
    timings: dict[str, float] = {}

    # ---- 1. data
    data_path = root / "data.h5"
    t0 = time.perf_counter()
    if data_path.exists():
        _say(f"[data] {data_path} exists, skipped")
    else:
        from ..data.generate import generate_dataset, make_config

        d = plan["data"]
        gen = make_config(
            model,
            mixture=d.get("mixture"),
            n_train=d.get("n_train"),
            n_val=d.get("n_val"),
            n_test=d.get("n_test"),
            seed=int(d.get("seed", 0)),
            n_points=d.get("n_points"),
        )
        workers = int(d.get("workers", min(2, os.cpu_count() or 1)))
        _say(f"[data] generating {data_path} ({workers} worker(s))")
        generate_dataset(gen, data_path, workers=workers, progress=progress)
    timings["data_s"] = time.perf_counter() - t0

    # ---- 2. tuning
    from ..training import apply_overrides, config_from_dict

    runs: dict[str, Any] = {}
    tune_dirs: dict[str, str] = {}
    t0 = time.perf_counter()
    if plan.get("tune"):
        from ..tuning import TuneConfig, load_tune_preset, tune

        tp = dict(plan["tune"])
        spaces = _space_labels(tp.pop("spaces"))
        base_preset = tp.pop("preset", None)
        if plan.get("default_run"):
            runs["default"] = _default_config(plan, model)
        for label, space in spaces.items():
            tdir = root / f"tune-{space}"
            done = tdir / "reproduce-tune.json"
            tune_dirs[label] = str(tdir)
            if done.exists():
                best = json.loads(done.read_text())["best_config"]
                _say(f"[tune] {space}: finished earlier, skipped")
            else:
                base_cfg = load_tune_preset(base_preset) if base_preset else TuneConfig()
                from dataclasses import asdict

                kw = asdict(base_cfg) | {k: v for k, v in tp.items() if v is not None} | {"space": space}
                if device != "auto":
                    kw["device"] = device
                _say(f"[tune] {space}: {kw.get('trials')} trials in {tdir}")
                summary = tune(TuneConfig(**kw), data_path, tdir, progress=progress)
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
            cfg = config_from_dict(best, source=f"best trial of {tdir}")
            runs[label] = apply_overrides(cfg, list(plan["final_overrides"]))
    else:
        runs["default"] = _default_config(plan, model)
    timings["tune_s"] = time.perf_counter() - t0

    # ---- 3. training
    from ..training import train

    t0 = time.perf_counter()
    for label, cfg in runs.items():
        rdir = root / "runs" / label
        if _run_finished(rdir):
            _say(f"[train] {label}: {rdir} finished earlier, skipped")
            continue
        _say(f"[train] {label}: {cfg.train.epochs} epochs into {rdir}")
        train(cfg, data_path, rdir, device=device, resume=True, progress=progress)
    timings["train_s"] = time.perf_counter() - t0

    # ---- 4. evaluation and reports
    t0 = time.perf_counter()
    ev = plan["evaluate"]
    summary: dict[str, Any] = {"model": model, "preset": name, "out": str(root.resolve()), "runs": {}}
    for label in runs:
        rdir, rep = root / "runs" / label, root / "reports" / label
        if _report_done(rep, rdir):
            _say(f"[evaluate] {label}: {rep} is up to date, skipped")
            results = json.loads((rep / "results.json").read_text())
        else:
            _say(f"[evaluate] {label}: report into {rep}")
            opts = EvaluateOptions(
                run_label=label,
                compare_runs={k: str(root / "runs" / k) for k in runs},
                tuning_dirs=tune_dirs,
                progress=False,
                **ev,
            )
            results = evaluate_run(rdir, data_path, rep, opts)
        rel = results["metrics"]["all"]["rel_l2"]
        summary["runs"][label] = {
            "rel_l2": rel["overall"],
            "rel_l2_per_variable": rel["per_variable"],
            "epoch": results.get("epoch"),
            "n_parameters": results.get("n_parameters"),
            "report": str((rep / "report.html").resolve()),
        }
    timings["evaluate_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - t_start
    from .study import study_results

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
