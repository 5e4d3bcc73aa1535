"""``ionfno generate``, ``ionfno merge`` and ``ionfno inspect``: build, join and check datasets.

Examples::

    ionfno generate hh --out hh.h5 --workers 2
    ionfno generate ord --out ord.h5 --shard 0/4        # on four machines: 0/4 .. 3/4
    ionfno merge ord.shard*.h5 --out ord.h5
    ionfno inspect ord.h5 --json

Run ``generate`` again after an interruption to resume it (same arguments).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="simulate a stimulus mixture into an HDF5 dataset (resumable)",
        description="Simulate MODEL under the stimulus mixture (default: the model's preset) with the fast "
        "batched solver and write train/val/test splits to one HDF5 file. Interrupted runs resume when the "
        "same command is run again; the file appears under its name only when complete.",
    )
    p.add_argument("model", help="model registry name (see `ionfno models`)")
    p.add_argument("--out", type=Path, required=True, help="output .h5 file")
    p.add_argument(
        "--n-train", type=int, default=None, help="training samples (default: the mixture's, 3000)"
    )
    p.add_argument("--n-val", type=int, default=None, help="validation samples (default 375)")
    p.add_argument("--n-test", type=int, default=None, help="test samples (default 375)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    p.add_argument("--t-end", type=float, default=None, help="window [ms] (default: the mixture's)")
    p.add_argument("--n-points", type=int, default=None, help="stored time points (default: the mixture's)")
    p.add_argument(
        "--mixture", default=None, help="mixture JSON file or preset name (default: the model's preset)"
    )
    p.add_argument("--solver", default=None, help="solver name (default: the mixture's, fast)")
    p.add_argument(
        "--rtol",
        type=float,
        default=None,
        help="relative tolerance (default: the mixture's, else the solver's)",
    )
    p.add_argument(
        "--atol", type=float, default=None,
        help="absolute tolerance (default: rtol x each unit's floor, per state)"
    )
    p.add_argument(
        "--compression",
        default="gzip",
        choices=["gzip", "lzf", "none"],
        help="HDF5 compression of the signals (default gzip)",
    )
    p.add_argument("--compression-level", type=int, default=1, help="gzip level 0-9 (default 1)")
    p.add_argument(
        "--workers", type=int, default=1, help="worker processes, each single-threaded (default 1)"
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="samples per block = solver batch (default: about 256 MB of float64 per block; "
        "ORd 309, FHN/HH 512); does not change the data",
    )
    p.add_argument(
        "--shard",
        default=None,
        metavar="I/K",
        help="generate only shard I of K (0 <= I < K); join the K files with `ionfno merge`",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a complete existing output")
    p.add_argument("--restart", action="store_true", help="discard an unfinished run instead of resuming it")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser(
        "merge",
        help="join the shard files of one configuration into one dataset",
        description="Join the K files written with --shard 0/K .. K-1/K into the file a single run writes.",
    )
    p.add_argument("shards", nargs="+", type=Path, help="the K shard files, in any order")
    p.add_argument("--out", type=Path, required=True, help="output .h5 file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(func=cmd_merge)

    p = sub.add_parser(
        "inspect",
        help="composition, firing, value ranges and an integrity check of a dataset (exit 1 if it fails)",
    )
    p.add_argument("path", type=Path, help="dataset .h5 file")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.set_defaults(func=cmd_inspect)


def cmd_generate(args: argparse.Namespace) -> int:
    from ..data.generate import finished_blocks, generate_dataset, make_config, parse_shard, partial_dir
    from ..data.storage import StorageOptions

    shard = parse_shard(args.shard)
    config = make_config(
        args.model,
        mixture=args.mixture,
        n_train=args.n_train,
        n_val=args.n_val,
        n_test=args.n_test,
        seed=args.seed,
        t_end=args.t_end,
        n_points=args.n_points,
        method=args.solver,
        rtol=args.rtol,
        atol=args.atol,
        storage=StorageOptions(
            compression=args.compression,
            compression_opts=args.compression_level if args.compression == "gzip" else None,
        ),
    )
    if finished_blocks(args.out) and not args.restart:
        print(f"ionfno generate: resuming the unfinished run in {partial_dir(args.out)}", file=sys.stderr)
    try:
        res = generate_dataset(
            config,
            args.out,
            workers=args.workers,
            batch_size=args.batch_size,
            shard=shard,
            overwrite=args.overwrite,
            restart=args.restart,
            progress=not args.no_progress,
        )
    except FileExistsError as e:
        raise OSError(str(e)) from None
    print(
        f"wrote {res.path}: {res.n_samples} samples ({res.n_simulated} simulated now), "
        f"{res.n_failed} failed, {res.seconds:.1f} s"
    )
    if res.n_failed:
        print(
            f"ionfno generate: warning: {res.n_failed} sample(s) failed (kept, flagged by status; "
            f"see `ionfno inspect {res.path}`)",
            file=sys.stderr,
        )
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from ..data.generate import merge_shards

    try:
        out = merge_shards(args.shards, args.out, overwrite=args.overwrite)
    except FileExistsError as e:
        raise OSError(str(e)) from None
    print(f"wrote {out} from {len(args.shards)} shard(s)")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from ..data.inspect import format_report, inspect_dataset

    rep = inspect_dataset(args.path)
    if args.json:
        json.dump(rep.to_dict(), sys.stdout, indent=2)
        print()
    else:
        print(format_report(rep))
    return 0 if rep.ok else 1
