"""Ionic models: named states with units, cited defaults and a pure batched vector field."""

from .base import IonicModel as IonicModel, StateError as StateError
from .fitzhugh_nagumo import FitzHughNagumo as FitzHughNagumo
from .hodgkin_huxley import HodgkinHuxley as HodgkinHuxley
from .registry import MODELS as MODELS, get_model as get_model, list_models as list_models
