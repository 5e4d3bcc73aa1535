"""Pretrained surrogates: trained FNOs shipped with ionfno (and folders of your own), by name.

A pretrained surrogate is a folder ``NAME/`` holding

* ``surrogate.pt``: a stripped ionfno checkpoint (the checkpoint format, version 1, without
  optimiser state or history): the config, the FNO weights (float16 or float32), the
  normalisers (float32) and the grid. It loads with ``torch.load(weights_only=True)``, like
  every checkpoint, so :meth:`ionfno.surrogate.Surrogate.load` reads it as any ``.pt`` file.
* ``card.json``: the model card (:mod:`ionfno.pretrained.build`): the data (mixture, seed,
  sizes, grid), the config, the commands that made it, the test error per variable in the
  study's metric and in physical units, the input range it was trained on, and the effect of
  the stored precision.
* ``card.md``: the same card, rendered for people.

``Surrogate.load("ord")`` and ``ionfno predict ord ...`` look a name up here when no file or
folder of that name exists. Folders are searched in order: those listed in the environment
variable ``IONFNO_PRETRAINED_PATH`` (separated by ``os.pathsep``), then the package's own.
``ionfno pretrained build RUN --name NAME --report REPORT`` packages a run.

This module reads only JSON (no torch), so that ``ionfno models`` stays fast.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

__all__ = [
    "CARD_FILE",
    "CARD_MARKDOWN",
    "WEIGHTS_FILE",
    "PATH_VARIABLE",
    "PACKAGE_DIR",
    "PretrainedError",
    "search_path",
    "list_pretrained",
    "find_pretrained",
    "resolve_source",
    "load_card",
    "check_name",
    "pretrained_by_model",
    "summary_line",
]

WEIGHTS_FILE = "surrogate.pt"
CARD_FILE = "card.json"
CARD_MARKDOWN = "card.md"
PATH_VARIABLE = "IONFNO_PRETRAINED_PATH"
#: The package's own folder of shipped surrogates (this folder).
PACKAGE_DIR = Path(__file__).resolve().parent

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class PretrainedError(ValueError):
    """An unknown or malformed pretrained surrogate name, or a damaged card."""


def check_name(name: str) -> str:
    """A pretrained name is one folder name: lower-case letters, digits, ``_ . -`` (no paths)."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise PretrainedError(
            f"Invalid pretrained surrogate name {name!r}: use lower-case letters, digits, '_', '.', '-' "
            "(at most 64 characters, no path separators)"
        )
    return name


def search_path() -> list[Path]:
    """Folders searched for pretrained surrogates, in order (``IONFNO_PRETRAINED_PATH``, then the package)."""
    extra = [Path(p) for p in os.environ.get(PATH_VARIABLE, "").split(os.pathsep) if p]
    return [*extra, PACKAGE_DIR]


def _is_surrogate(folder: Path) -> bool:
    return (folder / WEIGHTS_FILE).is_file() and (folder / CARD_FILE).is_file()


def list_pretrained() -> list[str]:
    """Names of every pretrained surrogate found (sorted; a name found twice counts once)."""
    names: set[str] = set()
    for root in search_path():
        if root.is_dir():
            names.update(d.name for d in root.iterdir() if _NAME.match(d.name) and _is_surrogate(d))
    return sorted(names)


def find_pretrained(name: str) -> Path | None:
    """The folder of pretrained surrogate ``name`` (the first on :func:`search_path`), or None."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        return None
    for root in search_path():
        if _is_surrogate(root / name):
            return root / name
    return None


def resolve_source(source: str | os.PathLike) -> Path:
    """``source`` if it exists (a run folder or a checkpoint), else pretrained ``source``'s weights file.

    Raises
    ------
    FileNotFoundError
        Neither exists (the message lists the installed pretrained names).
    """
    p = Path(source)
    if not p.exists() and (named := find_pretrained(str(source))) is not None:
        p = named / WEIGHTS_FILE
    if not p.exists():
        raise FileNotFoundError(
            f"No run folder, checkpoint or pretrained surrogate {str(p)!r} (pretrained: {list_pretrained()})"
        )
    return p


def load_card(name: str) -> dict[str, Any]:
    """The model card (``card.json``) of pretrained surrogate ``name``.

    Raises
    ------
    PretrainedError
        Unknown name (the message lists the known ones) or an unreadable card.
    """
    folder = find_pretrained(check_name(name))
    if folder is None:
        raise PretrainedError(f"No pretrained surrogate {name!r}; available: {list_pretrained()}")
    try:
        return json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise PretrainedError(f"Cannot read the model card of {name!r} ({folder / CARD_FILE}): {e}") from None


def pretrained_by_model() -> dict[str, list[str]]:
    """Ionic model name -> names of its pretrained surrogates (unreadable cards are left out)."""
    out: dict[str, list[str]] = {}
    for name in list_pretrained():
        try:
            out.setdefault(str(load_card(name).get("model")), []).append(name)
        except PretrainedError:
            continue
    return out


def summary_line(card: dict[str, Any]) -> str:
    """One line about a card: name, ionic model, test error, trained amplitude/duration ranges."""
    err = (card.get("test_error") or {}).get("overall")
    rng = (card.get("input") or {}).get("trained_range") or {}
    unit = (card.get("input") or {}).get("current_unit", "")
    tunit = (card.get("data") or {}).get("grid", {}).get("time_unit", "")

    def span(key: str, u: str) -> str:
        lo, hi = rng.get(key, (None, None))
        return f"{key} {lo:.3g}-{hi:.3g} {u}".rstrip() if lo is not None else ""

    parts = [f"{card.get('name')}: {card.get('model')}"]
    if err is not None:
        parts.append(f"test error {100 * err:.2f} % (study metric)")
    parts += [s for s in (span("amplitude", unit), span("duration", tunit)) if s]
    return ", ".join(parts)
