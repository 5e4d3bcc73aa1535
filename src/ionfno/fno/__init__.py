"""Fourier Neural Operator in time: spectral convolution, FNO1d, parameter count."""

from .fno import (
    ACTIVATIONS as ACTIVATIONS,
)
from .fno import (
    BLOCKS as BLOCKS,
)
from .fno import (
    FNO1d as FNO1d,
)
from .fno import (
    fno_parameter_count as fno_parameter_count,
)
from .fno import (
    get_activation as get_activation,
)
from .spectral_conv import (
    IMPLEMENTATIONS as IMPLEMENTATIONS,
)
from .spectral_conv import (
    SpectralConv1d as SpectralConv1d,
)
from .spectral_conv import (
    check_n_modes as check_n_modes,
)
