"""``ionfno compare``, ``ionfno heldout``, ``ionfno pretrained`` and ``ionfno app``: use a trained surrogate.

* ``compare NAME_OR_RUN`` runs the surrogate and the solver on one input and writes a figure
  and the errors (:func:`ionfno.evaluation.compare.compare_with_solver`).
* ``heldout NAME_OR_RUN ...`` scores surrogates on the fixed-seed out-of-distribution
  benchmark and the S1-S2 restitution curve (:mod:`ionfno.evaluation.heldout`).
* ``pretrained list|show|build`` lists the shipped surrogates, prints a model card, or
  packages a run (:mod:`ionfno.pretrained`).
* ``app`` serves the interactive page (:mod:`ionfno.app`, extra ``app``).

The input arguments (a pulse, a pulse train or a waveform file) are shared with
``ionfno predict`` (:func:`add_stimulus_arguments`, :func:`stimulus_from_args`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .._text import quantity

__all__ = ["register", "add_stimulus_arguments", "stimulus_from_args", "extrapolation_to_stderr"]


@contextlib.contextmanager
def extrapolation_to_stderr(command: str) -> Iterator[None]:
    """Print the surrogate's extrapolation warnings as ``ionfno COMMAND: warning: ...`` lines."""
    from ..surrogate import ExtrapolationWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ExtrapolationWarning)
        yield
    for w in caught:
        if issubclass(w.category, ExtrapolationWarning):
            print(f"ionfno {command}: warning: {w.message} (--strict refuses it)", file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def add_stimulus_arguments(p: argparse.ArgumentParser) -> None:
    """Input flags of ``predict`` and ``compare``: a pulse or train (``--amplitude``...) or ``--waveform``."""
    g = p.add_argument_group("input (a pulse, a pulse train, or a waveform file)")
    g.add_argument("--amplitude", type=float, default=None, help="pulse amplitude A (model current unit)")
    g.add_argument("--duration", type=float, default=None, help="pulse duration T_stim [ms]")
    g.add_argument(
        "--onset",
        type=float,
        default=0.0,
        help="start of the (first) pulse [ms] (default 0; the training data all start at 0)",
    )
    g.add_argument("--period", type=float, default=None, help="pulse period [ms] for a train (with --beats)")
    g.add_argument("--beats", type=int, default=1, help="number of pulses (default 1)")
    g.add_argument(
        "--waveform",
        type=Path,
        default=None,
        metavar="FILE",
        help="any applied current instead of a pulse: CSV with columns t,i_app or .npz with arrays "
        "t and i_app, covering the model's window; resampled to its grid",
    )
    g.add_argument(
        "--waveform-kind",
        choices=["linear", "hold"],
        default="linear",
        help="between waveform samples: linear interpolation (default) or hold the previous value",
    )


def stimulus_from_args(args: argparse.Namespace, t_end: float, time_unit: str = "ms") -> Any:
    """The protocol described by :func:`add_stimulus_arguments`' flags, checked against the window."""
    from ..cli import CLIError
    from ..stimulus import pulse

    if args.waveform is not None:
        given = [
            f
            for f, v in (
                ("--amplitude", args.amplitude),
                ("--duration", args.duration),
                ("--period", args.period),
            )
            if v is not None
        ]
        given += ["--onset"] if args.onset != 0.0 else []
        given += ["--beats"] if args.beats != 1 else []
        if given:
            raise CLIError(f"--waveform replaces the pulse; drop {', '.join(given)}")
        from ..waveform import check_window, read_waveform

        wf = read_waveform(args.waveform, kind=args.waveform_kind)
        check_window(wf, t_end, time_unit=time_unit)
        return wf
    if args.amplitude is None or args.duration is None:
        raise CLIError(
            "give a pulse (--amplitude A --duration T [--onset --period --beats]) or --waveform FILE"
        )
    if args.beats > 1 and args.period is None:
        raise CLIError("--beats > 1 needs --period")
    return pulse(
        args.amplitude,
        args.duration,
        args.onset,
        period=math.inf if args.period is None else args.period,
        n_beats=args.beats,
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="run a surrogate and the solver on the same input: figure, errors, biomarkers, times",
        description="Run the surrogate NAME_OR_RUN (a pretrained name, a run folder or a checkpoint) and the "
        "solver of its ionic model on one input, on the surrogate's grid, and write OUT/comparison.png "
        "(chosen states: solver vs surrogate, and the point-wise error), OUT/comparison.json (the study's "
        "metric and RMSE per state, biomarkers of V, both run times) and OUT/comparison.npz (t, i_app, "
        "solver and surrogate trajectories of every state).",
    )
    p.add_argument(
        "surrogate", help="pretrained name (`ionfno pretrained list`), run folder or .pt checkpoint"
    )
    add_stimulus_arguments(p)
    p.add_argument(
        "--states",
        default=None,
        help="comma-separated states to draw (default: V and the main concentrations, or all of a "
        "small model)",
    )
    p.add_argument("--solver", default="fast", help="solver (default fast; reference = SciPy BDF)")
    p.add_argument(
        "--checkpoint", choices=["best", "last"], default="best", help="for a run folder (default best)"
    )
    p.add_argument("--out", type=Path, default=None, help="output folder (default compare-NAME)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--strict", action="store_true",
                   help="refuse inputs outside the range the surrogate was trained on (default: warn)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "heldout",
        help="score surrogates on the held-out out-of-distribution benchmark and the S1-S2 restitution curve",
        description="Score one or more surrogates of the same ionic model (pretrained names, run folders or "
        "checkpoints) on fixed-seed protocols outside the study's single pulse at t = 0: a shifted pulse, "
        "two "
        "pulses, slow and fast pacing trains, S1-S2 pairs and smooth random currents (ranges of the model's "
        "general mixture), against the solver; and the S1-S2 restitution curve (APD90 of the S2 beat against "
        "the coupling interval). Writes OUT/heldout.json, OUT/heldout.csv, OUT/heldout-LABEL.png "
        "(V per kind) "
        "and OUT/restitution.png.",
    )
    p.add_argument("surrogates", nargs="+", metavar="NAME_OR_RUN",
                   help="pretrained name, run folder or .pt checkpoint; LABEL=NAME_OR_RUN names it in tables")
    p.add_argument("--out", type=Path, required=True, help="output folder (created)")
    p.add_argument("--n-per-kind", type=int, default=16, help="samples per kind (default 16)")
    p.add_argument("--seed", type=int, default=None, help="draw seed (default: the benchmark's fixed seed)")
    p.add_argument("--restitution-points", type=int, default=16,
                   help="coupling intervals (default 16; 0 skips)")
    p.add_argument(
        "--checkpoint", choices=["best", "last"], default="best", help="for a run folder (default best)"
    )
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--statistics", type=Path, default=None, metavar="DATA",
                   help="score every surrogate in the point-wise normalised space of this dataset's "
                        "training split (one space for all; needed for surrogates trained with the "
                        "channel normaliser; the metric divides by the deviation + 1e-5, which is 1e-5 "
                        "where every sample is at rest, at t = 0, so such a surrogate's small errors there "
                        "dominate: compare it on rmse_V and APD90); default: each surrogate's own "
                        "point-wise output normaliser")
    p.set_defaults(func=cmd_heldout)

    p = sub.add_parser(
        "pretrained",
        help="list, show or build pretrained surrogates",
        description="Pretrained surrogates load by name (`Surrogate.load('ord')`, `ionfno predict "
        "ord ...`); more are found in the folders of $IONFNO_PRETRAINED_PATH.",
    )
    psub = p.add_subparsers(dest="action", metavar="ACTION")
    psub.required = True
    q = psub.add_parser("list", help="the pretrained surrogates with their test error and trained range")
    q.add_argument("--json", action="store_true", help="every card as JSON")
    q.set_defaults(func=cmd_pretrained_list)
    q = psub.add_parser("show", help="print a model card (Markdown)")
    q.add_argument("name")
    q.set_defaults(func=cmd_pretrained_show)
    q = psub.add_parser(
        "build",
        help="package a run and its evaluation report as a pretrained surrogate",
        description="Write OUT/NAME/surrogate.pt (the checkpoint without optimiser state, parameters as "
        "--dtype), card.json and card.md (data, config, commands, test errors per variable in the study's "
        "and physical metrics, the trained input range, the measured effect of the stored precision). Needs "
        "the run's evaluation report (`ionfno evaluate RUN --data D.h5 --out REPORT`) and its dataset.",
    )
    q.add_argument("run_dir", type=Path, help="training run folder")
    q.add_argument("--name", required=True, help="the name users load it by (e.g. ord)")
    q.add_argument("--report", type=Path, required=True, help="its `ionfno evaluate` report folder")
    q.add_argument("--which", choices=["best", "last"], default="best", help="checkpoint (default best)")
    q.add_argument(
        "--dtype",
        choices=["float16", "float32"],
        default="float16",
        help="storage of the FNO parameters (default float16; normalisers stay float32)",
    )
    q.add_argument("--data", type=Path, default=None, help="the training dataset (default: the report's)")
    q.add_argument(
        "--out",
        type=Path,
        default=None,
        help="parent folder of NAME/ (default: the package's own, src/ionfno/pretrained in a checkout)",
    )
    q.add_argument("--description", default="", help="one paragraph for the card (default: the config's)")
    q.add_argument(
        "--train-command", default=None, help="the exact training command (default: reconstructed)"
    )
    q.add_argument("--generate-command", default=None, help="the exact data command (default: reconstructed)")
    q.add_argument("--overwrite", action="store_true", help="replace an existing NAME folder")
    q.set_defaults(func=cmd_pretrained_build)

    p = sub.add_parser(
        "app",
        help="serve the interactive page (needs the 'app' extra)",
        description="Serve a local web page where you pick a pretrained surrogate or a run folder, set a "
        "pulse, a pulse train or upload a waveform, and see the surrogate next to the solver: chosen states, "
        "point-wise error, run times and biomarkers. Everything is served from the installed packages (no "
        "internet). Needs `pip install 'ionfno[app]'`.",
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"
    )
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    p.add_argument(
        "--run",
        dest="runs",
        action="append",
        default=[],
        type=Path,
        metavar="RUN_DIR",
        help="also offer this run folder or checkpoint (repeatable)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.set_defaults(func=cmd_app)


def _load(name_or_path: str, which: str = "best"):
    from ..surrogate import Surrogate

    return Surrogate.load(name_or_path, which=which)


def _statistics_from(data: Path | None, sur: Any, memo: dict[int, Any]) -> tuple[Any, Any] | None:
    """Point-wise statistics of ``data``'s training split on ``sur``'s grid (None: its own).

    ``memo`` keeps them per subsample: surrogates on the same grid share one pass over the data.
    """
    if data is None:
        return None
    from ..data.storage import dataset_info
    from ..evaluation.pipeline import training_statistics

    if not Path(data).is_file():
        raise ValueError(f"--statistics: no dataset file {str(data)!r}")
    info = dataset_info(data)
    names = [str(n) for n in info["state_names"]]
    if int(info["n_points"]) != int(sur.info["n_points_stored"]) or names != list(sur.state_names):
        raise ValueError(
            f"--statistics {str(data)!r} holds states {names} on {info['n_points']} points; the "
            f"surrogate predicts {list(sur.state_names)} from {sur.info['n_points_stored']} stored points"
        )
    sub = int(sur.info["subsample"])
    if sub not in memo:
        memo[sub] = training_statistics(data, subsample=sub)
    return memo[sub]


def cmd_heldout(args: argparse.Namespace) -> int:
    import csv

    import numpy as np
    import torch

    from .._io import atomic_path, write_json_atomic
    from ..cli import CLIError
    from ..evaluation.heldout import (
        HELDOUT_KINDS,
        HELDOUT_SEED,
        evaluate_heldout,
        restitution_curve,
        study_statistics,
    )
    from ..evaluation.plots import plot_ood, plot_restitution

    for flag, v, lo in (("--n-per-kind", args.n_per_kind, 1), ("--threads", args.threads, 1),
                        ("--restitution-points", args.restitution_points, 0)):
        if v < lo:
            raise CLIError(f"{flag} must be >= {lo}, got {v}")
    if args.out.exists() and not args.out.is_dir():
        raise CLIError(f"--out {str(args.out)!r} exists and is not a folder")
    labelled = []
    for item in args.surrogates:
        label, _, src = item.rpartition("=") if "=" in item else ("", "", item)
        labelled.append((label or Path(src).name, src))
    labels = [lab for lab, _ in labelled]
    if len(set(labels)) != len(labels):
        raise CLIError(f"two surrogates share a label in {labels}; name them LABEL=NAME_OR_RUN")
    torch.set_num_threads(args.threads)
    surs = [(lab, _load(src, args.checkpoint)) for lab, src in labelled]
    models = {s.model_name for _, s in surs}
    if len(models) != 1:
        raise CLIError(f"the surrogates must share one ionic model, got {sorted(models)}")
    stats: dict[str, Any] = {}
    memo: dict[int, Any] = {}
    for lab, s in surs:  # before the output folder is created
        try:
            stats[lab] = study_statistics(s, _statistics_from(args.statistics, s, memo))
        except ValueError as e:
            raise CLIError(f"{lab!r}: {e}") from None
    seed = HELDOUT_SEED if args.seed is None else args.seed
    args.out.mkdir(parents=True, exist_ok=True)
    results, curves, rows = {}, {}, []
    for lab, sur in surs:
        r = evaluate_heldout(sur, n_per_kind=args.n_per_kind, seed=seed, statistics=stats[lab])
        if args.statistics is not None:
            r["statistics"] = str(args.statistics)
        traces = r.pop("traces")
        results[lab] = r
        fig = plot_ood(next(iter(traces.values()))["t"],
                       {k: {"i_app": v["i_app"][:4], "true": v["true"][:4], "pred": v["pred"][:4]}
                        for k, v in traces.items()}, time_unit=sur.time_unit)
        with atomic_path(args.out / f"heldout-{lab}.png") as tmp:
            fig.savefig(tmp, format="png", dpi=90)
        for kind, c in r["cases"].items():
            row = {k: v for k, v in c.items() if k != "description"}
            rows.append({"surrogate": lab, "kind": kind, **row})
        if args.restitution_points:
            curves[lab] = restitution_curve(sur, n=args.restitution_points)
            results[lab]["restitution"] = {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                                           for k, v in curves[lab].items()}
    if curves:
        fig = plot_restitution(curves, time_unit=surs[0][1].time_unit)
        with atomic_path(args.out / "restitution.png") as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    write_json_atomic(args.out / "heldout.json", {"model": models.pop(), "seed": seed, "surrogates": results})
    keys = sorted({k for r in rows for k in r}, key=lambda k: (k not in ("surrogate", "kind"), k))
    with atomic_path(args.out / "heldout.csv") as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)

    print(f"held-out benchmark, seed {seed}, {args.n_per_kind} samples per kind (study metric, %; "
          "APD90 error over beats where both fire, ms)")
    print("| surrogate | " + " | ".join(HELDOUT_KINDS) + " | restitution APD90 error |")
    print("|---" * (len(HELDOUT_KINDS) + 2) + "|")
    for lab, r in results.items():
        cells = []
        for k in HELDOUT_KINDS:
            c = r["cases"][k]
            apd = c.get("apd90_mae", float("nan"))
            cells.append(f"{100 * c['rel_l2']:.2f}" + ("" if not np.isfinite(apd) else f" ({apd:.1f} ms)"))
        rest = r.get("restitution", {}).get("apd90_mae")
        print(f"| {lab} | " + " | ".join(cells) + f" | {'-' if rest is None else f'{rest:.1f} ms'} |")
    extra = ", restitution.png" if curves else ""
    print(f"wrote {args.out}/heldout.json, heldout.csv, heldout-*.png{extra}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from .._io import atomic_path, write_json_atomic
    from ..cli import CLIError
    from ..evaluation.compare import compare_with_solver, default_states
    from ..evaluation.plots import plot_comparison

    if args.threads < 1:
        raise CLIError(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    sur = _load(args.surrogate, args.checkpoint)
    sur.strict = args.strict
    stim = stimulus_from_args(args, sur.t_end, sur.time_unit)
    states = (
        default_states(sur.state_names)
        if args.states is None
        else [s.strip() for s in args.states.split(",")]
    )
    unknown = [s for s in states if s not in sur.state_names]
    if unknown:
        raise CLIError(f"Unknown state(s) {unknown}; {sur.model_name} has {sur.state_names}")
    out = args.out or Path(f"compare-{Path(str(args.surrogate)).name}")
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {str(out)!r} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    with extrapolation_to_stderr("compare"):
        cmp = compare_with_solver(sur, stim, method=args.solver)

    idx = [cmp.index(s) for s in states]
    fig = plot_comparison(
        cmp.t,
        cmp.solver[idx],
        cmp.surrogate[idx],
        states,
        [cmp.state_units[i] for i in idx],
        i_app=cmp.i_app,
        current_unit=sur.current_unit,
        time_unit=sur.time_unit,
        title=f"{args.surrogate}: surrogate vs {args.solver} solver",
    )
    with atomic_path(out / "comparison.png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    summary = {
        "surrogate": str(args.surrogate),
        "solver": args.solver,
        "states_drawn": states,
        "stimulus": {k: np.asarray(v).tolist() for k, v in stim.to_dict().items()},
        **cmp.to_dict(),
    }
    write_json_atomic(out / "comparison.json", summary)
    with atomic_path(out / "comparison.npz") as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            t=cmp.t,
            i_app=cmp.i_app,
            solver=cmp.solver,
            surrogate=cmp.surrogate,
            state_names=np.array(cmp.state_names),
            state_units=np.array(cmp.state_units),
        )

    print(
        f"{args.surrogate} ({sur.model_name}) vs the {args.solver} solver on {cmp.t.shape[0]} points over "
        f"[0, {quantity(sur.t_end, sur.time_unit)}]"
    )
    if cmp.rel_l2 is not None:
        print(f"  study metric (mean over {len(cmp.state_names)} states): {100 * cmp.rel_l2:.3f} %")
    print(f"  {'state':<14}{'study metric':>14}{'RMSE':>12}{'max abs':>12}  unit")
    for s in states:
        e = cmp.errors[s]
        rel = "n/a" if e["rel_l2"] is None else f"{100 * e['rel_l2']:.3f} %"
        print(f"  {s:<14}{rel:>14}{e['rmse']:>12.4g}{e['max_abs']:>12.4g}  {cmp.state_units[cmp.index(s)]}")
    print(f"  {'biomarker':<14}{'solver':>12}{'surrogate':>12}")
    for k in ("v_peak", "t_upstroke", "apd90"):
        a, b = cmp.biomarkers["solver"][k], cmp.biomarkers["surrogate"][k]
        print(f"  {k:<14}{'-' if a is None else f'{a:.4g}':>12}{'-' if b is None else f'{b:.4g}':>12}")
    ms = {k: 1e3 * v for k, v in cmp.seconds.items()}
    print(f"  time: solver {ms['solver']:.1f} ms, surrogate {ms['surrogate']:.1f} ms")
    print(f"  wrote {out / 'comparison.png'}, comparison.json, comparison.npz")
    if cmp.solver_status != 0:
        print(f"ionfno compare: warning: solver status {cmp.solver_status}", file=sys.stderr)
        return 1
    return 0


def cmd_pretrained_list(args: argparse.Namespace) -> int:
    from ..pretrained import list_pretrained, load_card, summary_line

    names = list_pretrained()
    if args.json:
        json.dump({n: load_card(n) for n in names}, sys.stdout, indent=2, ensure_ascii=False)
        print()
        return 0
    if not names:
        print("no pretrained surrogates installed (package a run with `ionfno pretrained build`)")
    for n in names:
        print(summary_line(load_card(n)))
    return 0


def cmd_pretrained_show(args: argparse.Namespace) -> int:
    from ..pretrained import CARD_MARKDOWN, check_name, find_pretrained, list_pretrained

    folder = find_pretrained(check_name(args.name))
    if folder is None:
        raise ValueError(f"No pretrained surrogate {args.name!r}; available: {list_pretrained()}")
    md = folder / CARD_MARKDOWN
    if md.is_file():
        print(md.read_text(encoding="utf-8"))
    else:
        from ..pretrained import load_card
        from ..pretrained.build import render_card_markdown

        print(render_card_markdown(load_card(args.name)))
    return 0


def cmd_pretrained_build(args: argparse.Namespace) -> int:
    from ..pretrained.build import build_pretrained

    card = build_pretrained(
        args.run_dir,
        args.name,
        report_dir=args.report,
        out_dir=args.out,
        which=args.which,
        weights_dtype=args.dtype,
        data_path=args.data,
        description=args.description,
        train_command=args.train_command,
        generate_command=args.generate_command,
        overwrite=args.overwrite,
    )
    pr = card["precision"]
    print(
        f"ionfno pretrained build: {args.name} ({card['model']}) from {args.run_dir} ({args.which}, epoch "
        f"{card['source']['epoch']}): {card['files']['bytes'] / 1e6:.2f} MB of {args.dtype} weights"
    )
    print(
        f"  test error {100 * pr['test_error_float32']:.4f} % (float32) -> "
        f"{100 * pr['test_error_stored']:.4f} % ({args.dtype}), {pr['n_test']} test samples"
    )
    return 0


def cmd_app(args: argparse.Namespace) -> int:
    from ..app import serve  # a missing extra becomes "pip install 'ionfno[app]'" (cli.OPTIONAL_EXTRAS)
    from ..cli import CLIError

    if args.threads < 1:
        raise CLIError(f"--threads must be >= 1, got {args.threads}")
    serve(
        host=args.host,
        port=args.port,
        runs=[str(r) for r in args.runs],
        threads=args.threads,
        open_browser=args.open,
    )
    return 0
