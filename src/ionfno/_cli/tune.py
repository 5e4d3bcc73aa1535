"""``ionfno tune`` and ``ionfno tune-report``: search FNO hyperparameters; report what was found."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tune",
        help="tune FNO hyperparameters on a dataset (optuna; resumable; many workers may join)",
        description="Search FNO hyperparameters on DATA with TPE and pruning, training every trial "
        "with the code of `ionfno train`. The study lives in OUT/study.db unless --storage gives a "
        "database URL (then the same command on many machines joins one study). Running the same "
        "command again resumes: finished trials are kept, trials of a dead process are retried. "
        "Flags override the --preset's values.",
    )
    p.add_argument("data", type=Path, nargs="?", help="dataset file (.h5)")
    p.add_argument("--out", type=Path, help="tuning folder: per-trial folders, and the study store")
    p.add_argument("--preset", help="a tuning preset (name or .json; see --list-presets)")
    p.add_argument(
        "--space", help="search space: name (see --list-spaces) or .json file (default constrained)"
    )
    p.add_argument(
        "--budget",
        type=int,
        help="total trainable parameters per trial (within 2 %%); constrained spaces only",
    )
    p.add_argument("--trials", type=int, help="finished (complete or pruned) trials the study must hold")
    p.add_argument(
        "--timeout",
        type=float,
        help="seconds to tune in this process (a running trial is stopped and retried by the next run)",
    )
    p.add_argument(
        "--storage",
        help="database URL shared by many processes/machines, e.g. "
        "postgresql://user@host:5432/db, the password from ~/.pgpass or PGPASSWORD, not in the URL "
        "(default: OUT/study.db)",
    )
    p.add_argument("--study", help="study name (default: the space, plus -budget<N>)")
    p.add_argument("--pruner", help="asha (default), hyperband, median or none")
    p.add_argument("--grace", type=int, help="epochs before a trial may be pruned")
    p.add_argument("--reduction-factor", type=int, help="ASHA/Hyperband reduction factor (default 4)")
    p.add_argument(
        "--base",
        help="training preset or config .json for untuned settings (default: <dataset model>-default)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fix a training setting for every trial, e.g. --set epochs=20 (repeatable)",
    )
    p.add_argument(
        "--base-first",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="make the base configuration the first trial, as the study did (it must lie in the space)",
    )
    p.add_argument("--jobs", type=int, help="trials at once in this process (jobs x threads <= cores)")
    p.add_argument("--threads", type=int, help="torch threads per trial (default cores // jobs)")
    p.add_argument("--seed", type=int, help="study seed (default 0)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default auto")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--list-presets", action="store_true", help="list the tuning presets and exit")
    p.add_argument("--list-spaces", action="store_true", help="list the search spaces and exit")
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser(
        "tune-report",
        help="report a tuning study: trials, best configs (written as presets), constrained vs unconstrained",
        description="Print every trial of the studies in DIR (or in --storage), write the best "
        "configurations as ready-to-train presets, and compare the best constrained and "
        "unconstrained trials (error, and epochs to come within 5 % of the final error).",
    )
    p.add_argument("dirs", type=Path, nargs="*", metavar="DIR", help="tuning folder(s) of `ionfno tune`")
    p.add_argument("--storage", help="database URL instead of DIR")
    p.add_argument("--study", action="append", default=[], help="only this study (repeatable)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--top", type=int, default=3, help="presets written per study (default 3)")
    p.add_argument(
        "--presets-out",
        type=Path,
        help="folder for the presets (default DIR/best, or ./tuned-presets with --storage)",
    )
    p.set_defaults(func=cmd_tune_report)


def cmd_tune(args: argparse.Namespace) -> int:
    from ..tuning import (
        TuneConfig,
        default_study_name,
        list_spaces,
        list_tune_presets,
        load_tune_preset,
        tune,
    )

    if args.list_presets:
        for name in list_tune_presets():
            print(f"{name}: {load_tune_preset(name).description}")
        return 0
    if args.list_spaces:
        from ..tuning import load_space

        for name in list_spaces():
            print(f"{name}: {load_space(name).description}")
        return 0
    if args.data is None or args.out is None:
        raise ValueError("tune needs DATA and --out DIR (see ionfno tune --help)")
    cfg = load_tune_preset(args.preset) if args.preset else TuneConfig()
    d = asdict(cfg)
    for key in (
        "space",
        "budget",
        "trials",
        "timeout",
        "pruner",
        "grace",
        "reduction_factor",
        "base",
        "base_first",
        "jobs",
        "threads",
        "seed",
        "device",
    ):
        value = getattr(args, key)
        if value is not None:
            d[key] = value
    d["overrides"] = [*cfg.overrides, *args.overrides]
    cfg = TuneConfig(**d)
    study = args.study or default_study_name(cfg)
    summary = tune(
        cfg, args.data, args.out, storage=args.storage, study_name=study, progress=not args.no_progress
    )
    print(
        f"study {summary.study_name}: {summary.complete} complete, {summary.pruned} pruned, "
        f"{summary.failed} failed ({summary.stopped}, {summary.elapsed_s:.0f} s)"
    )
    if summary.best_number is not None:
        print(f"best: trial {summary.best_number}, validation error {summary.best_value:.4g}")
    report_target = (
        f"--storage '{summary.storage}' --study {summary.study_name}" if args.storage else str(args.out)
    )
    print(f"report: ionfno tune-report {report_target}")
    if summary.stopped.startswith("error") or "failed trials in a row" in summary.stopped:
        print(f"ionfno tune: stopped: {summary.stopped}", file=sys.stderr)
        return 1
    return 0


def cmd_tune_report(args: argparse.Namespace) -> int:
    from ..tuning import compare, format_report, load_studies, study_summary, write_presets
    from ..tuning.storage import STUDY_DB, default_storage_url

    if bool(args.dirs) == bool(args.storage):
        raise ValueError("give tuning folder(s) DIR or --storage URL (one of them)")
    if args.top < 0:
        raise ValueError(f"--top must be >= 0, got {args.top}")
    sources: list[tuple[str, Path]] = []
    if args.storage:
        sources.append((args.storage, args.presets_out or Path("tuned-presets")))
    for d in args.dirs:
        if not (d / STUDY_DB).is_file():
            raise OSError(
                f"{str(d)!r} has no {STUDY_DB}; is it a folder of `ionfno tune`? "
                "(for a database study use --storage URL)"
            )
        sources.append((default_storage_url(d), args.presets_out or d / "best"))
    summaries, presets = [], []
    for url, out in sources:
        studies = load_studies(url, args.study or None)
        for s in studies:
            summary = study_summary(s)
            summaries.append(summary)
            if args.top:
                presets += write_presets(summary, out, top=args.top)
    comparison = compare(summaries)
    if args.json:
        json.dump(
            {"studies": summaries, "comparison": comparison, "presets": [str(p) for p in presets]},
            sys.stdout,
            indent=2,
            default=str,
        )
        print()
    else:
        sys.stdout.write(format_report(summaries, comparison, presets))
    return 0
