"""Fourier Neural Operator in time: spectral convolution, FNO1d, its chunked rollout, parameter count, loading HyperNOs weights."""

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
from .hypernos import (
    from_hypernos_state_dict as from_hypernos_state_dict,
)
from .hypernos import (
    hypernos_architecture as hypernos_architecture,
)
from .hypernos import (
    map_hypernos_state_dict as map_hypernos_state_dict,
)
from .rollout import (
    ChunkedRollout as ChunkedRollout,
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
