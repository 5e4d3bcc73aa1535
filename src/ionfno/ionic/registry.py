"""Model registry: a plain dict of factories, and ``get_model`` with a helpful error."""

from __future__ import annotations

from collections.abc import Callable

from .base import IonicModel
from .fitzhugh_nagumo import FitzHughNagumo
from .hodgkin_huxley import HodgkinHuxley

__all__ = ["MODELS", "get_model", "list_models"]


def _ord(celltype: str) -> Callable[[], IonicModel]:
    def make() -> IonicModel:
        from .ohara_rudy import OHaraRudy  # imported lazily: the largest model

        return OHaraRudy(celltype=celltype)

    return make


MODELS: dict[str, Callable[[], IonicModel]] = {
    "fhn": FitzHughNagumo,
    "hh": HodgkinHuxley,
    "ord": _ord("endo"),
    "ord-epi": _ord("epi"),
    "ord-m": _ord("m"),
}


def list_models() -> list[str]:
    """Registered model names, in registry order."""
    return list(MODELS)


def get_model(name: str | IonicModel) -> IonicModel:
    """Instantiate a registered model by name (an instance is returned unchanged).

    Raises
    ------
    ValueError
        If ``name`` is not registered; the message lists the valid names.
    """
    if isinstance(name, IonicModel):
        return name
    try:
        factory = MODELS[name]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown model {name!r}; expected one of {list(MODELS)}") from None
    return factory()
