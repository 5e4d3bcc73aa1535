"""Small I/O helpers shared by every stage: atomic writes, safe JSON, and size checks.

Size checks (:func:`check_memory`, :func:`check_free_space`) compare what a job is about to
allocate or write with what the machine has *before* it starts, so that an impossible size
ends in a message naming the size, not in a ``MemoryError`` or a full disk halfway through.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_path",
    "write_json_atomic",
    "check_writable",
    "check_memory",
    "check_free_space",
    "available_memory",
    "format_bytes",
    "no_space_error",
]


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
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            tmp_p.unlink()
        if isinstance(e, OSError) and e.errno == errno.ENOSPC and e.strerror == os.strerror(errno.ENOSPC):
            raise no_space_error(p) from e  # the system's bare message: say which file
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


# ------------------------------------------------------------------------------ size checks
def format_bytes(n: float) -> str:
    """``1.5 GB``-style size (powers of 1000)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def available_memory() -> int | None:
    """Bytes of memory a new allocation can use now (Linux ``MemAvailable``), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(nbytes: float, what: str, *, hint: str = "") -> None:
    """Raise if ``nbytes`` cannot be allocated in the memory available now.

    Parameters
    ----------
    nbytes : float
        Estimated peak allocation [bytes].
    what : str
        What would be allocated, for the message ("the trajectory of 1e9 points").
    hint : str
        How to make it smaller, appended to the message.

    Raises
    ------
    MemoryError
        With the estimate and the available memory; the CLI shows it as an error (exit 2).
    """
    avail = available_memory()
    if avail is not None and nbytes > avail:
        raise MemoryError(
            f"{what} needs about {format_bytes(nbytes)} of memory but {format_bytes(avail)} is available"
            + (f"; {hint}" if hint else "")
        )


def check_free_space(path: str | os.PathLike, nbytes: float, what: str, *, hint: str = "") -> None:
    """Raise if the file system that will hold ``path`` has less than ``nbytes`` free.

    Raises
    ------
    OSError
        ``ENOSPC``, naming the folder, the estimate and the free space.
    """
    p = Path(path)
    folder = p if p.is_dir() else p.parent
    try:
        free = shutil.disk_usage(folder if str(folder) else ".").free
    except OSError:
        return  # the folder checks (check_writable) report a missing folder
    if nbytes > free:
        raise OSError(
            errno.ENOSPC,
            f"No space left on device for {what}: it needs about {format_bytes(nbytes)} "
            f"but {str(folder)!r} has {format_bytes(free)} free" + (f"; {hint}" if hint else ""),
        )


def no_space_error(path: str | os.PathLike, detail: str = "") -> OSError:
    """The error for a write to ``path`` that found the disk full (names the path and free space)."""
    p = Path(path)
    try:
        free = f" ({format_bytes(shutil.disk_usage(p.parent if str(p.parent) else '.').free)} free)"
    except OSError:
        free = ""
    return OSError(
        errno.ENOSPC, f"No space left on device writing {str(p)!r}{free}" + (f"; {detail}" if detail else "")
    )
