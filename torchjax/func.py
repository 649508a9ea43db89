"""``torchjax.func``: a drop-in for ``torch.func``, executed by JAX and compiled by XLA.

``functional_call``, ``stack_module_state`` and ``replace_all_batch_norm_modules_``
rearrange modules and their state in Python and involve no math of their own; they
are torch's own functions and work unchanged inside torchjax transforms.
"""

from torch.func import functional_call as functional_call
from torch.func import replace_all_batch_norm_modules_ as replace_all_batch_norm_modules_
from torch.func import stack_module_state as stack_module_state

from ._src.transforms.functionalize import functionalize as functionalize
from ._src.transforms.grad import grad as grad
from ._src.transforms.grad import grad_and_value as grad_and_value
from ._src.transforms.jacobian import hessian as hessian
from ._src.transforms.jacobian import jacfwd as jacfwd
from ._src.transforms.jacobian import jacrev as jacrev
from ._src.transforms.vjp import jvp as jvp
from ._src.transforms.vjp import linearize as linearize
from ._src.transforms.vjp import vjp as vjp
from ._src.transforms.vmap import vmap as vmap

__all__ = [
    "functional_call",
    "functionalize",
    "grad",
    "grad_and_value",
    "hessian",
    "jacfwd",
    "jacrev",
    "jvp",
    "linearize",
    "replace_all_batch_norm_modules_",
    "stack_module_state",
    "vjp",
    "vmap",
]
