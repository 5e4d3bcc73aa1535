"""``ionfno train`` and ``ionfno predict``: fit an FNO on a dataset; run a trained one.

``predict`` writes the ``ionfno simulate`` .npz layout (t, states (N, n_states) in model
units, state_names, state_units, i_app, model, status, y0), so every tool that reads a
simulation reads a prediction too.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
from pathlib import Path

from .surrogate import add_stimulus_arguments, extrapolation_to_stderr, stimulus_from_args

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train an FNO on a dataset file (resumes an interrupted run)",
        description="Train an FNO on DATA (an `ionfno generate` .h5 file). The run folder gets "
        "config.json, best.pt, last.pt, metrics.csv and test_metrics.json. Running the same "
        "command again after an interruption resumes from last.pt.",
    )
    p.add_argument("data", type=Path, help="dataset file (.h5)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", help="a shipped preset (see --list-presets)")
    src.add_argument("--config", type=Path, help="a JSON config file (layout of the presets)")
    src.add_argument("--list-presets", action="store_true", help="list the shipped presets and exit")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set train.lr=3e-3 --set epochs=20 (repeatable)",
    )
    p.add_argument("--out", type=Path, help="run folder (created if missing)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="default: auto")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: the config's train.threads; capped at the cores)",
    )
    p.add_argument("--no-resume", action="store_true", help="start over even if RUN_DIR has a last.pt")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--init",
        metavar="NAME_OR_RUN",
        help="start from these weights (a run folder's last.pt, a .pt checkpoint or a pretrained name) "
        "instead of a random initialisation: fine-tuning, or a further schedule after a finished run; "
        "the architecture must match the config",
    )
    p.set_defaults(func=_leave_no_empty_folder(cmd_train))

    p = sub.add_parser(
        "predict",
        help="predict the states for one input with a trained FNO (writes the simulate .npz layout)",
        description="Evaluate a surrogate (a pretrained name such as `ord`, a run folder's best checkpoint, "
        "or a .pt file) for one rectangular pulse, pulse train or waveform file and write t, states, "
        "state_names and i_app to an .npz file.",
    )
    p.add_argument("run_dir", type=Path, metavar="NAME_OR_RUN",
                   help="pretrained name (`ionfno pretrained list`), run folder, or .pt checkpoint")
    add_stimulus_arguments(p)
    p.add_argument("--t-end", type=float, default=None, help="window T (must equal the training window)")
    p.add_argument(
        "--n-points",
        type=int,
        default=None,
        help="grid points (default: the training grid; others need a channel-normalised model)",
    )
    p.add_argument("--checkpoint", choices=["best", "last"], default="best", help="default: best")
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"], help="default: cpu")
    p.add_argument(
        "--strict",
        action="store_true",
        help="refuse (exit 2) an input outside the range the surrogate was trained on, instead of warning",
    )
    p.add_argument("--out", type=Path, required=True, help="output .npz file")
    p.set_defaults(func=cmd_predict)


def _load_cfg(args: argparse.Namespace):
    from ..training import apply_overrides, load_config, load_preset

    cfg = load_preset(args.preset) if args.preset else load_config(args.config)
    overrides = list(args.overrides)
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        overrides.append(f"train.threads={args.threads}")
    return apply_overrides(cfg, overrides)


def cmd_train(args: argparse.Namespace) -> int:
    from ..cli import CLIError

    if args.list_presets:
        from ..training import list_presets, load_preset

        for name in list_presets():
            print(f"{name:<20} {load_preset(name).description}")
        return 0
    if args.out is None:
        raise CLIError("--out RUN_DIR is required")
    if not args.data.exists():
        raise CLIError(f"Dataset file {str(args.data)!r} does not exist")
    cfg = _load_cfg(args)  # bad presets/overrides fail before torch is imported by training

    # OpenMP workers that sleep instead of spinning while they wait: on a machine shared with
    # other jobs, spinning threads made a 2-thread step ~30x slower than a 1-thread one (measured
    # at load 10 on 2 cores); idle, the cost is a few percent. Only effective before torch's
    # OpenMP runtime starts, i.e. before torch is imported; an explicit setting wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from ..training import train
    from ..training.distributed import RankError

    try:
        res = train(
            cfg, args.data, args.out, device=args.device, resume=not args.no_resume,
            progress=not args.no_progress, init=args.init,
        )
    except RankError as e:
        raise CLIError(str(e)) from None
    if int(os.environ.get("RANK", "0")) != 0:  # a torchrun rank: rank 0 reports
        return 0
    print(
        f"ionfno train: {res.epochs_run} epochs, {res.n_parameters} parameters; "
        f"best val {100 * res.best_val:.3f} % (epoch {res.best_epoch}), last val {100 * res.final_val:.3f} %"
    )
    if cfg.train.time_limit_s is not None:
        print(
            f"  time limit {cfg.train.time_limit_s:.0f} s: planned {res.planned_epochs} epochs"
            + ("; stopped early to stay within it" if res.stopped_by_time else "")
        )
    if res.test_metrics:
        for which, m in res.test_metrics.items():
            per_var = ", ".join(
                f"{k[len('rel_l2_') :]} {100 * v:.3f} %" for k, v in m.items() if k.startswith("rel_l2_")
            )
            print(f"  test ({which}, epoch {m['epoch']}): {100 * m['rel_l2']:.3f} %  ({per_var})")
    print(f"  run folder: {args.out}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from .._io import check_writable

    check_writable(args.out)
    from ..ionic import get_model
    from ..surrogate import Surrogate
    from .simulate import write_trajectory_npz

    sur = Surrogate.load(args.run_dir, which=args.checkpoint, device=args.device)
    sur.strict = args.strict
    t = sur.grid(t_end=args.t_end, n_points=args.n_points)
    stim = stimulus_from_args(args, sur.t_end, sur.time_unit)
    with extrapolation_to_stderr("predict"):
        states = sur.predict_array(sur.encode(stim, n_points=t.shape[0]))[0].T  # (N, S)
    i_app = stim.sample(t)  # (1, N), the current as sampled, whatever the model's input encoding
    model = get_model(sur.model_name)
    if list(model.state_names) != sur.state_names:
        raise ValueError(f"The surrogate's states {sur.state_names} do not match model {sur.model_name!r}")
    write_trajectory_npz(
        args.out, model=model, t=t, states=states, i_app=i_app[0], status=0, y0=model.default_state()
    )
    print(json.dumps({"out": str(args.out), "model": sur.model_name, "n_points": int(t.shape[0])}))
    return 0


def _leave_no_empty_folder(command):
    """``command(args)`` that removes ``args.out`` again if it created it and failed leaving it empty.

    A refused config or dataset fails before training writes anything; the run folder it had
    created would otherwise stay behind, empty.
    """

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        out = getattr(args, "out", None)
        existed = out is None or Path(out).exists()
        try:
            return command(args)
        except BaseException:
            if not existed and Path(out).is_dir() and not any(Path(out).iterdir()):
                shutil.rmtree(out, ignore_errors=True)
            raise

    return run
