"""What a tuning study found: a table of trials, the best configs as presets, and the comparison.

The comparison is the reference study's: the best validation (and, where measured, test) error
of the constrained and the unconstrained search, and the epochs each best trial needed to come
within 5 % of its final error. "Final error" is the best validation error of the trial's run
(the checkpoint kept); "epochs to within 5 %" is the first epoch at which the best-so-far
validation error is at most 1.05 times it. The running best makes the count monotone, so one
lucky early epoch or one late spike does not decide it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .._io import write_json_atomic

__all__ = [
    "load_studies",
    "read_trials",
    "trial_rows",
    "epochs_to_within",
    "study_summary",
    "write_presets",
    "compare",
    "format_report",
]


def load_studies(storage_url: str, names: list[str] | None = None) -> list[Any]:
    """The studies in a storage (all of them, or those named).

    Raises
    ------
    ValueError
        If the storage holds no study, or a named study is not there (the message lists them).
    """
    import optuna

    from .storage import open_storage, redact_url

    storage = open_storage(storage_url, heartbeat_interval=None)
    available = optuna.study.get_all_study_names(storage=storage)
    if not available:
        raise ValueError(f"No tuning study in {redact_url(storage_url)!r}")
    if names:
        missing = [n for n in names if n not in available]
        if missing:
            raise ValueError(f"No study named {missing} in {redact_url(storage_url)!r}; it has {available}")
    return [optuna.load_study(study_name=n, storage=storage) for n in (names or available)]


def read_trials(tune_dir: str | Path) -> list[tuple[int, float | None]]:
    """(trial number, objective) of every trial in a tuning folder of ``ionfno tune``.

    Reads the folder's optuna study store (all studies in it); a trial without a value
    (pruned before reporting, failed, running) gives None. A folder without a store gives [].
    """
    from .storage import STUDY_DB, default_storage_url

    d = Path(tune_dir)
    if not (d / STUDY_DB).is_file():
        return []
    out: list[tuple[int, float | None]] = []
    for study in load_studies(default_storage_url(d)):
        out += [(int(r["number"]), r["value"]) for r in study_summary(study)["trials"]]
    return out


def epochs_to_within(curve: dict[int, float] | list[tuple[int, float]], rel: float = 0.05) -> int | None:
    """First epoch at which the best-so-far value is within ``rel`` of the best value overall."""
    items = sorted(curve.items() if isinstance(curve, dict) else curve)
    finite = [(e, v) for e, v in items if v is not None and math.isfinite(v)]
    if not finite:
        return None
    final = min(v for _, v in finite)
    best = math.inf
    for e, v in finite:
        best = min(best, v)
        if best <= (1 + rel) * final:
            return int(e)
    return None  # pragma: no cover (the minimum itself qualifies)


def trial_rows(study: Any) -> list[dict[str, Any]]:
    """One dict per trial: number, state, value, params, n_parameters, epochs and why it failed."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        ua = t.user_attrs
        cfg = ua.get("config") or {}
        rows.append(
            {
                "number": t.number,
                "state": t.state.name,
                "value": t.value,
                "params": dict(t.params),
                "n_parameters": ua.get("n_parameters"),
                "size_rule": ua.get("size_rule"),
                "model": cfg.get("model"),
                "config": cfg or None,
                "epochs_run": ua.get("epochs_run", len(t.intermediate_values) or None),
                "epochs_to_5pct": epochs_to_within(t.intermediate_values),
                "test": ua.get("test"),
                "fail_reason": ua.get("fail_reason"),
                "retry_of": ua.get("retry_of"),
                "trial_dir": ua.get("trial_dir"),
                "duration_s": t.duration.total_seconds() if t.duration is not None else None,
            }
        )
    return rows


def _kind(study: Any, rows: list[dict[str, Any]]) -> str:
    rules = {r["size_rule"] for r in rows if r["size_rule"]}
    if rules == {"sampled"}:
        return "unconstrained"
    if rules and "sampled" not in rules:
        return "constrained"
    space = (study.user_attrs.get("ionfno") or {}).get("space", {})
    return (
        "constrained"
        if space.get("modes") or study.user_attrs.get("ionfno", {}).get("budget")
        else "unconstrained"
    )


def study_summary(study: Any) -> dict[str, Any]:
    """Counts, best trial and the epochs-to-5 % of one study."""
    rows = trial_rows(study)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    complete = [r for r in rows if r["state"] == "COMPLETE" and r["value"] is not None]
    best = min(complete, key=lambda r: r["value"]) if complete else None
    ident = study.user_attrs.get("ionfno") or {}
    return {
        "name": study.study_name,
        "kind": _kind(study, rows),
        "space": study.user_attrs.get("space_name"),
        "budget": ident.get("budget"),
        "dataset": study.user_attrs.get("dataset"),
        "counts": counts,
        "finished": counts.get("COMPLETE", 0) + counts.get("PRUNED", 0),
        "best": best,
        "trials": rows,
    }


def write_presets(summary: dict[str, Any], out_dir: str | Path, top: int = 3) -> list[Path]:
    """Write the ``top`` complete trials' configs as training presets (``<study>-rank<k>.json``).

    The file names stay inside ``out_dir`` whatever the study is called: a name that is not a
    valid study name (one from a shared database) is sanitised (:func:`safe_file_stem`).
    """
    from .storage import safe_file_stem

    out = Path(out_dir)
    complete = sorted(
        (r for r in summary["trials"] if r["state"] == "COMPLETE" and r["value"] is not None),
        key=lambda r: r["value"],
    )
    paths = []
    for rank, r in enumerate(complete[:top], start=1):
        if not r["config"]:
            continue
        cfg = dict(r["config"])
        test = (r.get("test") or {}).get("rel_l2")
        cfg["description"] = (
            f"Tuned: study {summary['name']!r} ({summary['kind']}), trial {r['number']}, rank {rank}: "
            f"validation error {r['value']:.4g}"
            + (f", test error {test:.4g}" if test is not None else "")
            + f", {r['n_parameters']} parameters, {r['epochs_run']} epochs."
        )
        path = out / f"{safe_file_stem(summary['name'])}-rank{rank}.json"
        if path.resolve().parent != out.resolve():  # cannot happen with a safe stem; never write elsewhere
            raise ValueError(f"Preset path {str(path)!r} is outside {str(out)!r}")
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, cfg)
        paths.append(path)
    return paths


def compare(summaries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Best constrained vs best unconstrained (error, test error, parameters, epochs to 5 %)."""
    by_kind: dict[str, dict[str, Any]] = {}
    for s in summaries:
        b = s["best"]
        if b is None:
            continue
        cur = by_kind.get(s["kind"])
        if cur is None or b["value"] < cur["best_val"]:
            by_kind[s["kind"]] = {
                "study": s["name"],
                "trial": b["number"],
                "best_val": b["value"],
                "test_error": (b.get("test") or {}).get("rel_l2"),
                "n_parameters": b["n_parameters"],
                "epochs_run": b["epochs_run"],
                "epochs_to_5pct": b["epochs_to_5pct"],
            }
    if len(by_kind) < 2:
        return None
    c, u = by_kind["constrained"], by_kind["unconstrained"]
    ratio = (
        (u["epochs_to_5pct"] / c["epochs_to_5pct"]) if c["epochs_to_5pct"] and u["epochs_to_5pct"] else None
    )
    return {"constrained": c, "unconstrained": u, "epochs_ratio_unconstrained_over_constrained": ratio}


def _fmt(v: Any, spec: str = ".4g") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return format(v, spec)
    return str(v)


def format_report(
    summaries: list[dict[str, Any]], comparison: dict[str, Any] | None, presets: list[Path]
) -> str:
    """Human-readable report: one table per study, then the comparison."""
    lines: list[str] = []
    for s in summaries:
        counts = ", ".join(f"{k.lower()} {v}" for k, v in sorted(s["counts"].items()))
        budget = f", budget {s['budget']}" if s["budget"] else ""
        lines.append(f"study {s['name']} ({s['kind']}{budget}): {counts}")
        lines.append(
            f"  {'#':>4} {'state':<8} {'val':>9} {'test':>9} {'epochs':>6} {'to5%':>5} {'params':>9} "
            f"{'H':>4} {'L':>2} {'K':>3} {'block':<8} {'act':<10} {'lr':>8}"
        )
        for r in s["trials"]:
            m = r["model"] or {}
            p = r["params"]
            lines.append(
                f"  {r['number']:>4} {r['state']:<8} {_fmt(r['value']):>9} "
                f"{_fmt((r.get('test') or {}).get('rel_l2')):>9} {_fmt(r['epochs_run']):>6} "
                f"{_fmt(r['epochs_to_5pct']):>5} {_fmt(r['n_parameters']):>9} "
                f"{_fmt(m.get('hidden_channels')):>4} {_fmt(m.get('n_layers')):>2} "
                f"{_fmt(m.get('n_modes')):>3} "
                f"{_fmt(m.get('block')):<8} "
                f"{_fmt(m.get('activation')):<10} {_fmt(p.get('train.lr'), '.2e'):>8}"
                + (f"  ({r['fail_reason']})" if r["fail_reason"] else "")
            )
        b = s["best"]
        if b is not None:
            lines.append(
                f"  best: trial {b['number']}, validation error {b['value']:.4g}, "
                f"{b['n_parameters']} parameters, within 5 % of its final error after "
                f"{b['epochs_to_5pct']} of {b['epochs_run']} epochs"
            )
        lines.append("")
    if comparison is not None:
        c, u = comparison["constrained"], comparison["unconstrained"]
        lines.append("constrained vs unconstrained (best trial of each):")
        lines.append(f"  {'':<14} {'val':>9} {'test':>9} {'params':>10} {'epochs to 5%':>13}")
        for name, d in (("constrained", c), ("unconstrained", u)):
            lines.append(
                f"  {name:<14} {_fmt(d['best_val']):>9} {_fmt(d['test_error']):>9} "
                f"{_fmt(d['n_parameters']):>10} {_fmt(d['epochs_to_5pct']):>13}"
            )
        if comparison["epochs_ratio_unconstrained_over_constrained"] is not None:
            lines.append(
                f"  unconstrained needs {comparison['epochs_ratio_unconstrained_over_constrained']:.2f}x "
                "the epochs of constrained to come within 5 %"
            )
    for p in presets:
        lines.append(f"preset written: {p}")
    return "\n".join(lines).rstrip() + "\n"
