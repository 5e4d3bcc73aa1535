"""Datasets: stimulus mixtures, batched generation, and the self-describing HDF5 file.

* :mod:`~ionfno.data.mixtures` -- mixtures of stimulus "parts" as data (JSON presets), and
  the deterministic per-sample parameter draw.
* :mod:`~ionfno.data.generate` -- simulate a mixture with the fast solver, in blocks, with
  workers, shards and resume; :func:`~ionfno.data.generate.merge_shards`.
* :mod:`~ionfno.data.storage` -- the file layout, :func:`~ionfno.data.storage.read_split`
  and :func:`~ionfno.data.storage.dataset_info`.
* :mod:`~ionfno.data.inspect` -- composition, ranges and an integrity check of a file.
* :mod:`~ionfno.data.biomarkers` -- the one definition of "fires an action potential".

Heavy dependencies (h5py) are imported inside functions, so importing this package is cheap.
"""

from .biomarkers import fires as fires
from .biomarkers import firing_threshold as firing_threshold
from .generate import GenerateConfig as GenerateConfig
from .generate import generate_dataset as generate_dataset
from .generate import make_config as make_config
from .generate import merge_shards as merge_shards
from .inspect import inspect_dataset as inspect_dataset
from .mixtures import Mixture as Mixture
from .mixtures import Part as Part
from .mixtures import list_mixtures as list_mixtures
from .mixtures import load_mixture as load_mixture
from .mixtures import sample_parameters as sample_parameters
from .storage import SPLITS as SPLITS
from .storage import DatasetError as DatasetError
from .storage import dataset_info as dataset_info
from .storage import read_split as read_split
from .storage import write_arrays as write_arrays
