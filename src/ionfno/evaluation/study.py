"""The reference study's published test errors, to print next to ours.

Values are the study's metric (relative L2 in the point-wise normalised space, averaged over
variables then samples; see :mod:`ionfno.evaluation.metrics`) on its test sets, as fractions.
Source: Pellegrini, Ghiotto, Centofanti, Pavarino (2025), arXiv:2505.14039, its tables of
test errors; ORd values are given there only as "about 2 %" (``approx``).

Columns: ``default`` (the study's default FNO, untuned), ``unconstrained`` and
``constrained`` (the two tuned search spaces; constrained keeps the default model's
spectral-weight budget).
"""

from __future__ import annotations

from typing import Any

__all__ = ["STUDY_RESULTS", "STUDY_COLUMNS", "study_results", "STUDY_CITATION"]

STUDY_CITATION = (
    "Pellegrini, Ghiotto, Centofanti, Pavarino (2025), Learning high-dimensional ionic model "
    "dynamics using Fourier Neural Operators, arXiv:2505.14039"
)

STUDY_COLUMNS = ("default", "unconstrained", "constrained")

STUDY_RESULTS: dict[str, dict[str, dict[str, Any]]] = {
    "fhn": {
        "default": {"overall": 0.0089},
        "unconstrained": {"overall": 0.0088, "n_parameters": 8.7e6},
        "constrained": {
            "overall": 0.0082,
            "per_variable": {"V": 0.0121, "w": 0.0042},
            "n_parameters": 0.57e6,
        },
    },
    "hh": {
        "default": {"overall": 0.0330},
        "unconstrained": {
            "overall": 0.0235,
            "per_variable": {"V": 0.0334, "m": 0.0275, "h": 0.0155, "n": 0.0177},
            "n_parameters": 13.4e6,
        },
        "constrained": {"overall": 0.0267, "n_parameters": 0.63e6},
    },
    "ord": {
        "unconstrained": {"overall": 0.02, "approx": True, "n_parameters": 12.4e6},
        "constrained": {"overall": 0.02, "approx": True, "n_parameters": 0.5e6},
    },
}


def study_results(model: str) -> dict[str, dict[str, Any]]:
    """The study's numbers for a registry model name (ORd cell types share ``"ord"``'s); {} if none."""
    return STUDY_RESULTS.get(model, STUDY_RESULTS.get(model.split("-")[0], {}))
