"""Fourier Neural Operator in time: spectral convolution, FNO1d, parameter count."""

from .fno import (
    ACTIVATIONS as ACTIVATIONS,
    BLOCKS as BLOCKS,
    FNO1d as FNO1d,
    fno_parameter_count as fno_parameter_count,
    get_activation as get_activation,
)
from .spectral_conv import (
    IMPLEMENTATIONS as IMPLEMENTATIONS,
    SpectralConv1d as SpectralConv1d,
    check_n_modes as check_n_modes,
)
