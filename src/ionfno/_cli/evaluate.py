"""``ionfno evaluate``, ``ionfno reproduce`` and ``ionfno export``: judge, rebuild, ship a surrogate."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["register"]

# As ionfno.evaluation.export's (tests/evaluation/test_export_formats.py checks they agree);
# repeated so that building the parser imports no torch.
_EXPORT_FORMATS = ("pt2", "torchscript", "onnx")
_ONNX_OPSETS = (18, 23)


def _label_dirs(items: list[str], flag: str) -> dict[str, str]:
    out = {}
    for it in items:
        label, sep, path = it.partition("=")
        if not sep or not label or not path:
            raise ValueError(f"{flag} expects LABEL=DIR (e.g. constrained=runs/c), got {it!r}")
        out[label] = path
    return out


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a trained run on a dataset; write an HTML/JSON/CSV report",
        description="Evaluate RUN_DIR on the test split of DATA: the study's metric and physical errors per "
        "variable and dataset part, action-potential biomarkers, the worst samples, surrogate vs solver "
        "speed and out-of-distribution stimuli; write REPORT_DIR/report.html (self-contained), "
        "results.json, metrics.csv, "
        "worst_samples.csv and figures/.",
    )
    p.add_argument("run_dir", type=Path, help="training run folder (best.pt / last.pt)")
    p.add_argument("--data", type=Path, required=True, help="the dataset file the run was trained on (.h5)")
    p.add_argument("--out", type=Path, required=True, help="report folder (created)")
    p.add_argument("--which", choices=["best", "last"], default="best", help="checkpoint (default best)")
    p.add_argument(
        "--split", choices=["train", "val", "test"], default="test", help="split evaluated (default test)"
    )
    p.add_argument("--label", default="this run", help="name of the run in tables (e.g. constrained)")
    p.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="LABEL=RUN_DIR",
        help="overlay another run's loss curves (repeatable)",
    )
    p.add_argument(
        "--tuning",
        action="append",
        default=[],
        metavar="LABEL=TUNE_DIR",
        help="plot a tuning folder's trial history (repeatable)",
    )
    p.add_argument(
        "--speed-samples", type=int, default=64, help="samples timed for surrogate and fast solver"
    )
    p.add_argument("--reference-samples", type=int, default=4, help="samples timed for the SciPy reference")
    p.add_argument(
        "--ood-per-kind", type=int, default=3,
        help="held-out out-of-distribution samples per kind (as `ionfno heldout`, fixed seed; 0 skips)",
    )
    p.add_argument("--restitution-points", type=int, default=12,
                   help="S1-S2 coupling intervals of the restitution curve (default 12; 0 skips)")
    p.add_argument("--threads", type=int, default=1, help="torch threads during the evaluation (default 1)")
    p.add_argument("--n-worst", type=int, default=10, help="worst samples listed (default 10)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "reproduce",
        help="generate -> tune -> train -> evaluate -> report, resumable",
        description="Reproduce the reference study's pipeline for MODEL with a preset: quick (minutes, no "
        "tuning), cpu (hours on a CPU, small tuning), paper (the study's protocol; GPU), smoke "
        "(seconds, CI), or a JSON file. Every stage is skipped when its output is complete; run the same "
        "command again to resume.",
    )
    p.add_argument("model", nargs="?", help="ionic model (fhn, hh, ord, ...)")
    p.add_argument("--preset", default="quick", help="quick (default), cpu, paper, smoke, or a .json file")
    p.add_argument("--out", type=Path, default=None, help="output folder (default reproduce-MODEL-PRESET)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="training device")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--list-presets", action="store_true", help="list the presets and exit")
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser(
        "export",
        help="export a trained surrogate: torch.export (.pt2), TorchScript (.pt) or ONNX (.onnx)",
        description="Write the whole surrogate (normalisers, grid channel and FNO) as one network: i_app "
        "(batch, N) -> states (batch, n_states, N) in model units, plus OUT.json with names, units and grid. "
        "ONNX needs the 'export' extra (onnx, onnxscript).",
    )
    p.add_argument("run_dir", type=Path, help="training run folder or checkpoint file")
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="output file (.pt2 for torch.export, .onnx for ONNX, else TorchScript)",
    )
    p.add_argument(
        "--format",
        choices=list(_EXPORT_FORMATS),
        default=None,
        help="default: from the file name (.pt2 -> pt2, .onnx -> onnx, else torchscript)",
    )
    p.add_argument("--which", choices=["best", "last"], default="best", help="checkpoint (default best)")
    lo, hi = _ONNX_OPSETS
    p.add_argument("--opset", type=int, default=lo, help=f"ONNX opset, {lo} (default) to {hi}")
    p.set_defaults(func=cmd_export)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..evaluation.pipeline import EvaluateOptions, evaluate_run

    if not args.run_dir.exists():
        raise FileNotFoundError(f"No run folder {str(args.run_dir)!r}")
    if args.out.exists() and not args.out.is_dir():
        raise OSError(f"--out {str(args.out)!r} exists and is not a folder")
    tuning_dirs = _label_dirs(args.tuning, "--tuning")
    trials = {}
    if tuning_dirs:
        from ..tuning.report import read_trials

        trials = {label: read_trials(d) for label, d in tuning_dirs.items()}
    opts = EvaluateOptions(
        which=args.which,
        split=args.split,
        run_label=args.label,
        n_worst=args.n_worst,
        compare_runs=_label_dirs(args.compare, "--compare"),
        tuning_dirs=tuning_dirs,
        speed_samples=args.speed_samples,
        reference_samples=args.reference_samples,
        ood_per_kind=args.ood_per_kind,
        restitution_points=args.restitution_points,
        threads=args.threads,
    )
    res = evaluate_run(args.run_dir, args.data, args.out, opts, tuning_trials=trials)
    per_variable = res.rel_l2_per_variable
    per = ", ".join(f"{k} {100 * v:.3g} %" for k, v in list(per_variable.items())[:6])
    print(
        f"{res.model} {args.split}: study metric {100 * res.rel_l2:.3g} % ({per}"
        f"{', ...' if len(per_variable) > 6 else ''}); report: {args.out / 'report.html'}"
    )
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from ..reproduce import (
        format_summary,
        list_reproduce_presets,
        load_reproduce_preset,
        reproduce,
    )

    if args.list_presets:
        for name in list_reproduce_presets():
            print(f"{name}: {load_reproduce_preset(name).get('description', '')}")
        return 0
    if not args.model:
        raise ValueError("reproduce needs MODEL (e.g. ionfno reproduce fhn --preset quick)")
    summary = reproduce(args.model, args.preset, args.out, device=args.device, progress=not args.no_progress)
    sys.stdout.write(format_summary(summary))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..evaluation.export import check_opset, export_onnx, export_pt2, export_torchscript

    fmt = args.format or {".onnx": "onnx", ".pt2": "pt2"}.get(args.out.suffix, "torchscript")
    if fmt == "onnx":
        check_opset(args.opset)  # before loading anything
        try:
            path = export_onnx(args.run_dir, args.out, which=args.which, opset=args.opset)
        except ImportError as e:
            raise ValueError(str(e)) from None
    elif fmt == "pt2":
        path = export_pt2(args.run_dir, args.out, which=args.which)
    else:
        path = export_torchscript(args.run_dir, args.out, which=args.which)
    print(f"wrote {path} ({fmt}) and {path}.json")
    return 0
