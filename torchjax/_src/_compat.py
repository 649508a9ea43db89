"""Every private (or semi-private) JAX and torch name torchjax touches, in one place.

Each import names the public alternative where one exists. ``tests/test_compat.py``
imports this module and checks each name, so a JAX or torch release that moves one
fails loudly there, naming the symbol, instead of changing behaviour silently.
"""

from __future__ import annotations

import jax
import torch

# jax.device_put's primitive, for crossing.py's _put_cpu (see batched_device_put below)
from jax._src.core import ShapedArray as ShapedArray
from jax._src.lib import xla_client as _xla_client

# JAX's primitive extension points (documented in "How JAX primitives work"; no public
# alternative: jax.custom_jvp/custom_vjp cannot express a tangent that flows forward but
# not backward, which is what torch's no_grad means).
from jax.interpreters import ad as jax_ad
from jax.interpreters import batching as jax_batching
from jax.interpreters import mlir as jax_mlir

# How many tensors (and storage handles) share a storage: an output may take over a
# tensor's storage only if nothing else can see it. Public alternative: none.
from torch._C import _storage_Use_Count as storage_use_count

# torch.func's interpreter stack (is a transform running?) and its legacy batched
# tensors (torch.autograd.functional's vectorize=True); public alternative: none.
from torch._C._functorch import is_legacy_batchedtensor as is_legacy_batchedtensor
from torch._C._functorch import peek_interpreter_stack as peek_interpreter_stack

# torch's decompositions of ATen ops, the dispatcher's fallback for an op with no rule;
# public alternative: none (torch.export's default decompositions are a subset).
from torch._decomp import decomposition_table as decomposition_table

# torch.func's own argument checks (argnums; vmap's in_dims, out_dims, randomness), so that a
# bad argument gets torch.func's exception and message; public alternative: none.
from torch._functorch.eager_transforms import _check_unique_non_empty as check_unique_non_empty
from torch._functorch.eager_transforms import _validate_and_wrap_argnums as validate_and_wrap_argnums
from torch._functorch.vmap import _broadcast_to_and_flatten as broadcast_to_and_flatten
from torch._functorch.vmap import _check_out_dims_is_int_or_int_pytree as check_out_dims_is_int_or_int_pytree
from torch._functorch.vmap import _check_randomness_arg as check_randomness_arg
from torch._functorch.vmap import _process_batched_inputs as process_batched_inputs

# torch.library.custom_op's registry of op definitions (implementation, backward,
# setup_context); public alternative: none.
from torch._library import custom_ops as _torch_custom_ops

# torch.autograd.Function's own test for a new-style Function (setup_context defined);
# public alternative: none (torch.func uses the same private helper).
from torch.autograd.function import _is_setup_context_defined as is_setup_context_defined
from torch.autograd.function import _SingleLevelFunction as SingleLevelFunction

# Run torch code with the active dispatch modes off; public alternative: none.
from torch.utils._python_dispatch import _disable_current_modes as disable_current_modes
from torch.utils._python_dispatch import _get_current_dispatch_mode as get_current_dispatch_mode

# torch.utils.checkpoint's two routes: use_reentrant=True applies this old-style
# autograd.Function; use_reentrant=False drives this generator, which ``checkpoint``
# looks up as a module attribute at every call. Public alternative: none.
from torch.utils.checkpoint import CheckpointFunction as CheckpointFunction
from torch.utils.checkpoint import _checkpoint_without_reentrant_generator as checkpoint_generator


def custom_op_defs() -> dict:
    """``{"ns::name": CustomOpDef}`` of every ``torch.library.custom_op``."""
    return _torch_custom_ops.OPDEFS


# The primitive under jax.device_put for a NumPy array, called directly: ~4 us instead of
# ~28 us per tensor crossing to the CPU device (crossing._put_cpu); public alternative:
# jax.device_put, slower.
batched_device_put = _xla_client.batched_device_put

# torch's C implementation of Function.apply (what ``super().apply`` reaches); public
# alternative: none.
FunctionBase = torch._C._FunctionBase

# the module whose generator a capture replaces (see checkpoint.intercept_checkpoint)
torch_checkpoint_module = torch.utils.checkpoint


def checkpoint_call_result(frame, missing):
    """What ``torch.utils.checkpoint.checkpoint`` got from its own call of the region:
    its local ``ret``, read from its frame (the one that resumed our generator), or
    ``missing``. torch gives the generator no other way to see it; a torch release that
    renames the local makes ``tests/test_checkpoint.py`` fail (its warning is an error
    there)."""
    code = frame.f_code
    if code.co_name != "checkpoint" or code.co_filename != torch_checkpoint_module.__file__:
        return missing
    return frame.f_locals.get("ret", missing)


ad_Zero = jax_ad.Zero
ad_deflinear2 = jax_ad.deflinear2
ad_is_undefined_primal = jax_ad.is_undefined_primal
ad_primitive_transposes = jax_ad.primitive_transposes
ad_primitive_jvps = jax_ad.primitive_jvps
batching_primitive_batchers = jax_batching.primitive_batchers
mlir_register_lowering = jax_mlir.register_lowering
mlir_lower_fun = jax_mlir.lower_fun

# The trace a tracer belongs to (a slot of jax.core.Tracer): which transform level a value
# is at. vmap asks it which outputs and writes it batched, as torch.func needs to know for
# out_dims=None and for writes into tensors it does not map over; public alternative:
# none (jax.vmap moves every output's batch axis to out_axes and does not say which it
# broadcast).
tracer_trace = jax.core.Tracer._trace

NAMES = {
    "jax.interpreters.ad.Zero": ad_Zero,
    "jax.interpreters.ad.deflinear2": ad_deflinear2,
    "jax.interpreters.ad.is_undefined_primal": ad_is_undefined_primal,
    "jax.interpreters.ad.primitive_transposes": ad_primitive_transposes,
    "jax.interpreters.ad.primitive_jvps": ad_primitive_jvps,
    "jax.interpreters.batching.primitive_batchers": batching_primitive_batchers,
    "jax.interpreters.mlir.register_lowering": mlir_register_lowering,
    "jax.interpreters.mlir.lower_fun": mlir_lower_fun,
    "torch.autograd.function._is_setup_context_defined": is_setup_context_defined,
    "torch.autograd.function._SingleLevelFunction": SingleLevelFunction,
    "torch._C._FunctionBase": FunctionBase,
    "jax._src.core.ShapedArray": ShapedArray,
    "jax._src.lib.xla_client.batched_device_put": batched_device_put,
    "torch._decomp.decomposition_table": decomposition_table,
    "torch.utils.checkpoint.CheckpointFunction": CheckpointFunction,
    "torch.utils.checkpoint._checkpoint_without_reentrant_generator": checkpoint_generator,
    "torch._library.custom_ops.OPDEFS": _torch_custom_ops.OPDEFS,
    "torch.utils._python_dispatch._disable_current_modes": disable_current_modes,
    "torch._C._storage_Use_Count": storage_use_count,
    "torch.utils._python_dispatch._get_current_dispatch_mode": get_current_dispatch_mode,
    "torch._C._functorch.is_legacy_batchedtensor": is_legacy_batchedtensor,
    "torch._C._functorch.peek_interpreter_stack": peek_interpreter_stack,
    "torch._functorch.eager_transforms._check_unique_non_empty": check_unique_non_empty,
    "torch._functorch.eager_transforms._validate_and_wrap_argnums": validate_and_wrap_argnums,
    "torch._functorch.vmap._broadcast_to_and_flatten": broadcast_to_and_flatten,
    "torch._functorch.vmap._check_out_dims_is_int_or_int_pytree": check_out_dims_is_int_or_int_pytree,
    "torch._functorch.vmap._check_randomness_arg": check_randomness_arg,
    "torch._functorch.vmap._process_batched_inputs": process_batched_inputs,
    "jax.core.Tracer._trace": tracer_trace,
}


def trace_of(x):
    """The JAX trace ``x`` is a tracer of, or None for a value no transform traces.

    Inside ``jax.vmap``, a value is batched by that vmap if it is a tracer of the same
    trace as the vmapped inputs: a value computed from them is, a constant is not.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> seen = []
        >>> def f(x):
        ...     level = trace_of(x)
        ...     seen.append((trace_of(x * 2) is level, trace_of(jnp.ones(2) + 1) is level))
        ...     return x
        >>> _ = jax.vmap(f)(jnp.zeros(3))
        >>> seen, trace_of(jnp.zeros(3))
        ([(True, False)], None)
    """
    return tracer_trace.__get__(x) if isinstance(x, jax.core.Tracer) else None
