"""Numbers with units in messages: ``100 ms``, but ``100`` (not ``100 1``) when dimensionless."""

from __future__ import annotations

__all__ = ["quantity", "unit_label"]

_DIMENSIONLESS = ("", "1", "-")


def quantity(value: float, unit: str, spec: str = "g") -> str:
    """``f"{value:{spec}} {unit}"``, or the bare number for a dimensionless unit (``"1"``, ``""``)."""
    number = format(value, spec)
    return number if unit in _DIMENSIONLESS else f"{number} {unit}"


def unit_label(unit: str) -> str:
    """The unit as a word for prose: ``"ms"``, or ``"dimensionless"``."""
    return "dimensionless" if unit in _DIMENSIONLESS else unit
