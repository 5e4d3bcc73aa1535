"""Small I/O helpers shared by every stage: atomic writes and safe JSON."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "write_json_atomic", "check_writable"]


def check_writable(path: str | os.PathLike) -> Path:
    """Fail early, with a clear message, if ``path`` cannot be created.

    Raises
    ------
    OSError
        If the parent folder is missing, not a folder, or not writable, or ``path`` is a folder.
    """
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise OSError(f"Output path {str(p)!r} is a directory, expected a file path")
    if not parent.exists():
        raise OSError(f"Cannot write {str(p)!r}: folder {str(parent)!r} does not exist")
    if not parent.is_dir():
        raise OSError(f"Cannot write {str(p)!r}: {str(parent)!r} is not a folder")
    if not os.access(parent, os.W_OK):
        raise OSError(f"Cannot write {str(p)!r}: folder {str(parent)!r} is not writable")
    return p


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    A crash or an exception leaves ``path`` as it was (absent or the previous complete file)
    and removes the temporary file.
    """
    p = check_writable(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp" + suffix, dir=p.parent or ".")
    os.close(fd)
    tmp_p = Path(tmp)
    # mkstemp creates 0600; give the final file the usual permissions (0666 less the umask).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_p, 0o666 & ~umask)
    try:
        yield tmp_p
        with open(tmp_p, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_p, p)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_p.unlink()
        raise


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serialisable")


def preset_names(folder: str) -> list[str]:
    """Names of the presets shipped in ``ionfno/presets/<folder>/`` (``*.json``), sorted."""
    from importlib import resources

    d = resources.files("ionfno") / "presets" / folder
    return sorted(p.name[: -len(".json")] for p in d.iterdir() if p.name.endswith(".json"))


def is_json_path(spec: str) -> bool:
    """Whether a preset argument names a file (``*.json`` or a path) rather than a shipped preset."""
    return spec.endswith(".json") or os.sep in spec


def read_preset_json(spec: str | os.PathLike, folder: str, kind: str) -> dict[str, Any]:
    """The JSON object of a shipped preset (by name) or of a file (by path).

    Parameters
    ----------
    spec : str or path
        A name in ``presets/<folder>/`` or a JSON file path (see :func:`is_json_path`).
    folder : str
        Preset folder (``"train"``, ``"tune"``, ``"mixtures"``, ``"reproduce"``, ...).
    kind : str
        What it is, for messages (``"tuning preset"``, ``"mixture"``, ...).

    Raises
    ------
    ValueError
        Unknown name (the message lists the shipped ones), unreadable file or invalid JSON.
    """
    from importlib import resources

    s = str(spec)
    if is_json_path(s):
        try:
            text = Path(s).read_text()
        except OSError as e:
            raise ValueError(f"Cannot read {kind} {s!r}: {e.strerror or e}") from None
    else:
        names = preset_names(folder)
        if s not in names:
            raise ValueError(f"Unknown {kind} {s!r}; expected one of {names} or a .json file")
        text = (resources.files("ionfno") / "presets" / folder / f"{s}.json").read_text()
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{kind[:1].upper()}{kind[1:]} {s!r} is not valid JSON: {e}") from None
    if not isinstance(d, dict):
        raise ValueError(f"{kind[:1].upper()}{kind[1:]} {s!r} must be a JSON object, got {type(d).__name__}")
    return d
