"""torchjax: run PyTorch code on JAX.

Importing torchjax changes nothing global: no torch backend is renamed, no JAX config
flag is flipped, no dispatch mode is left on.
"""

from . import autograd as autograd
from . import func as func
from . import functorch as functorch
from ._src import ops as _ops  # noqa: F401  (registers the translation table)
from ._src.compile import disable_jit as disable_jit
from ._src.convert import JaxFunction as JaxFunction
from ._src.convert import JaxModule as JaxModule
from ._src.convert import jit as jit
from ._src.convert import to_jax as to_jax
from ._src.crossing import to_jax_array as to_jax_array
from ._src.crossing import to_torch as to_torch
from ._src.custom_ops import register_callback as register_callback
from ._src.errors import TracingError as TracingError
from ._src.errors import UnsupportedOpError as UnsupportedOpError
from ._src.from_jax import from_jax as from_jax
from ._src.registry import register_op as register_op
from ._src.registry import registered_ops as registered_ops
from ._src.tensor import JaxTensor as JaxTensor
from ._src.transforms.base import clear_cache as clear_cache

__version__ = "0.1.0"

__all__ = [
    "JaxFunction",
    "JaxModule",
    "JaxTensor",
    "TracingError",
    "UnsupportedOpError",
    "autograd",
    "clear_cache",
    "disable_jit",
    "from_jax",
    "func",
    "functorch",
    "jit",
    "register_callback",
    "register_op",
    "registered_ops",
    "to_jax",
    "to_jax_array",
    "to_torch",
]
