"""One thin command line over the library: ``ionfno <command> ...``.

Each stage registers its subcommands from a small module in ``ionfno._cli``; handlers parse
arguments into config dataclasses and call library functions. Heavy imports (torch, h5py,
optuna) happen inside handlers so that ``ionfno models`` starts fast.

Exit codes: 0 success, 1 a check failed (e.g. ``inspect`` found problems), 2 bad input or
an error with a message, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Modules under ionfno._cli, each with ``register(subparsers)``.
_COMMAND_MODULES = ("simulate", "data", "train", "tune", "evaluate", "surrogate")


class CLIError(Exception):
    """An error whose message is shown to the user as is (exit code 2)."""


# Optional packages -> the extra of pyproject.toml that installs them.
OPTIONAL_EXTRAS = {
    "optuna": "tune",
    "psycopg2": "postgres",
    "matplotlib": "plot",
    "onnx": "export",
    "onnxruntime": "export",
    "onnxscript": "export",
    "tensorboard": "tensorboard",
    "starlette": "app",
    "uvicorn": "app",
    "plotly": "app",
}


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="ionfno",
        description="Fourier Neural Operator surrogates of ionic cell models.",
    )
    parser.add_argument("--version", action="version", version=f"ionfno {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _COMMAND_MODULES:
        try:
            mod = importlib.import_module(f"ionfno._cli.{name}")
        except ModuleNotFoundError as e:  # a stage not installed/written yet
            if e.name != f"ionfno._cli.{name}":
                raise
            continue
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import os

    # Busy-waiting OpenMP threads made 2-thread torch steps 12-30x slower whenever another
    # process held a core (measured, RESULTS.md); passive waiting costs nothing when idle.
    # It must be set before torch is imported, hence here, for every command.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except KeyboardInterrupt:
        print(f"ionfno {args.command}: interrupted", file=sys.stderr)
        return 130
    except (CLIError, ValueError, OSError, KeyError, MemoryError) as e:
        print(f"ionfno {args.command}: error: {_message(e)}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        extra = OPTIONAL_EXTRAS.get((e.name or "").split(".")[0])
        if extra is None:
            raise
        print(
            f"ionfno {args.command}: error: this needs the optional package {e.name.split('.')[0]!r}; "
            f"install it with: pip install 'ionfno[{extra}]'",
            file=sys.stderr,
        )
        return 2
    return int(rc or 0)


def _message(e: BaseException) -> str:
    if isinstance(e, KeyError) and e.args:
        return str(e.args[0])
    if isinstance(e, MemoryError):
        # Our own size checks say what and how much; a bare MemoryError from deep inside does not.
        return str(e) if str(e) else "out of memory (try a smaller size, fewer samples or points)"
    if isinstance(e, OSError) and e.strerror and e.filename is None and e.errno is not None:
        return e.strerror  # an OSError(errno, message) of ours: the message, without "[Errno N]"
    return str(e)


if __name__ == "__main__":
    sys.exit(main())
