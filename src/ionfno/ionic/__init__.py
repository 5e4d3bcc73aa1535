"""Ionic models: named states with units, cited defaults and a pure batched vector field."""

from .base import IonicModel as IonicModel, StateError as StateError
from .fitzhugh_nagumo import FitzHughNagumo as FitzHughNagumo
from .hodgkin_huxley import HodgkinHuxley as HodgkinHuxley
from .registry import MODELS as MODELS, get_model as get_model, list_models as list_models


def __getattr__(name: str):
    # ORd is the largest model; import it only when asked for.
    if name in ("OHaraRudy", "OHaraRudyParams"):
        from . import ohara_rudy

        return getattr(ohara_rudy, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
