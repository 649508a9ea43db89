"""What the differentiation transforms share: torch.func's checks, the eager fallback, the mode choice.

The transforms themselves live in ``grad.py`` (grad, grad_and_value), ``vjp.py`` (vjp,
jvp, linearize) and ``jacobian.py`` (jacrev, jacfwd, hessian).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import jax
import jax.numpy as jnp
import torch
from torch.utils import _pytree as pytree

from .. import caches, dtypes
from ..capture import is_array
from ..errors import TracingError
from ..grad_mode import mode_specific_count
from ..tensor import current_context
from .base import _LRU, Transform, fn_key
from .body import Body


def _not_float(call: str, leaf: torch.Tensor) -> RuntimeError:
    return RuntimeError(
        f"{call}: only Tensors of floating point dtype can require gradients; got an "
        f"input of dtype {leaf.dtype}. Differentiate with respect to floating point inputs "
        "(x.float()) or move integer inputs out of argnums."
    )


def _check_diff_inputs(call: str, diff_args, forward: bool = False) -> None:
    """torch.func's checks on the inputs it differentiates, in its order.

    Reverse mode (grad, vjp, jacrev) marks one leaf after another as requiring grad;
    jacfwd takes every leaf's ``numel()`` first, then makes each a dual tensor.
    """
    leaves = pytree.tree_leaves(diff_args)
    if forward:
        for leaf in leaves:
            if not isinstance(leaf, torch.Tensor):
                raise AttributeError(
                    f"{call}: '{type(leaf).__name__}' object has no attribute 'numel': every input "
                    f"that is differentiated must be a Tensor, got {type(leaf)}. Pass non-tensor "
                    "arguments outside argnums (or through a closure)."
                )
        for leaf in leaves:
            if not (leaf.is_floating_point() or leaf.is_complex()):
                raise ValueError(f"{call}: Expected primal to be floating point or complex, but got: {leaf.dtype}")
        return
    for leaf in leaves:
        if not isinstance(leaf, torch.Tensor):
            raise ValueError(
                f"{call}: Thing passed to transform API must be Tensor, got {type(leaf)}. Pass "
                "non-tensor arguments outside argnums (or through a closure or functools.partial)."
            )
        if not (leaf.is_floating_point() or leaf.is_complex()):
            raise _not_float(call, leaf)


def _check_real(call: str, tree, what: str) -> None:
    """jacrev and jacfwd take no complex inputs or outputs (``what``), as in torch.func."""
    for idx, leaf in enumerate(pytree.tree_leaves(tree)):
        if (isinstance(leaf, torch.Tensor) and leaf.is_complex()) or (
            is_array(leaf) and jnp.issubdtype(leaf.dtype, jnp.complexfloating)
        ):
            raise RuntimeError(
                f"{call}: Expected all {what} to be real but received complex tensor at flattened "
                f"input idx: {idx}. Differentiate the real and imaginary parts separately "
                "(torch.view_as_real), or use vjp/jvp."
            )


def _check_outputs(call: str, out, outputs: str) -> None:
    """The outputs of a function vjp, jvp, jacrev or jacfwd differentiates, as torch.func
    checks them: ``outputs`` is ``"tensors"`` (forward mode), ``"inexact"`` (reverse mode:
    floating point or complex tensors) or ``"any"`` (linearize passes other values through)."""
    if outputs == "any":
        return
    leaves = pytree.tree_leaves(out)
    if not leaves or (len(leaves) == 1 and leaves[0] is None):
        raise RuntimeError(f"{call}: Expected f to be a function that has non-empty output (got output = {leaves})")
    for leaf in leaves:
        if not is_array(leaf):
            raise RuntimeError(
                f"{call}: expected f(*primals) to return only tensors, got unsupported type {type(leaf)}"
            )
    if outputs == "inexact":
        for leaf in leaves:
            if not jnp.issubdtype(leaf.dtype, jnp.inexact):
                raise RuntimeError(
                    f"{call}: All outputs of f must be floating-point or complex Tensors, got Tensor "
                    f"with dtype {dtypes.to_torch_dtype(leaf.dtype)}"
                )


class _Differentiating(Transform):
    """Differentiation transforms fall back to torch.func on data-dependent Python control flow."""

    # FnKey.key -> FnKey.held (keeps the ids in the key valid) of the calls that fell back
    _eager_fallback = _LRU(256)

    forward = False  # whether the inputs are checked as forward mode checks them (jacfwd)

    def torch_func_equivalent(self) -> Callable:
        raise NotImplementedError

    def check_inputs(self, call: str, diff_args) -> None:
        _check_diff_inputs(call, diff_args, forward=self.forward)

    def __call__(self, *args, **kwargs):
        if current_context() is not None:
            return self._inner(self.plan(args, kwargs), args, kwargs)
        key = fn_key(self)
        fallback = _Differentiating._eager_fallback
        if fallback.data and fallback.get(key.key) is not None:
            return self.torch_func_equivalent()(*args, **kwargs)
        try:
            return self._top(key, args, kwargs)
        except TracingError as e:
            warnings.warn(
                f"{self.call_repr()}: the function uses a tensor's value in Python control flow, "
                f"which JAX cannot trace; running it with torch.func instead (eager, not XLA).\n{e}",
                RuntimeWarning,
                stacklevel=2,
            )
            fallback.put(key.key, key.held)
            return self.torch_func_equivalent()(*args, **kwargs)


caches.register("transforms.eager_fallback", _Differentiating._eager_fallback.clear)


# --------------------------------------------------------------------------- the mode of a Jacobian

_OTHER_MODE = {jax.jacrev: jax.jacfwd, jax.jacfwd: jax.jacrev}
_MODE_GAIN = 2  # change mode only when the other one needs at most half the passes

# What JAX raises, while tracing, where the other mode has no rule that the mode asked for
# has: forward mode through a jax.custom_vjp function (TypeError, a rule with only a
# reverse derivative); reverse mode through a while_loop (ValueError) or a tangent with
# no transpose rule (NotImplementedError). Keyed by the mode asked for.
_OTHER_MODE_CANNOT_TRACE: dict[Callable, tuple[type[Exception], ...]] = {
    jax.jacrev: (TypeError,),
    jax.jacfwd: (ValueError, NotImplementedError),
}


def switches_mode(reverse: bool, n_in: int, n_out: int) -> bool:
    """Whether a Jacobian asked for in reverse (or forward) mode runs in the other one:
    reverse mode takes one pass per output element, forward mode one per input element."""
    need, other_need = (n_out, n_in) if reverse else (n_in, n_out)
    return other_need * _MODE_GAIN <= need


def cheaper_jacobian(mode: Callable, body: Body, flat_args: list, may_switch: bool = True):
    """The Jacobian of ``body`` (over lists of arrays, with aux) by the mode that needs fewer passes.

    Reverse mode pulls back one basis vector per output element, forward mode pushes
    forward one per input element: both give the same matrix (up to rounding) at a cost
    proportional to those counts, so a wide-output ``jacrev`` (or a wide-input
    ``jacfwd``) runs in the other mode. Only for real floating inputs and outputs (complex
    ones have mode-specific holomorphic rules), and if the other mode cannot trace (a
    rule with only a reverse derivative), the requested one runs.
    """
    argnums = tuple(range(len(flat_args)))
    n_in = sum(a.size for xs in flat_args for a in xs)
    if may_switch and n_in and all(_real_float(a) for xs in flat_args for a in xs):
        seen = mode_specific_count()
        outs = jax.eval_shape(lambda *d: body(*d)[0], *flat_args)
        n_out = sum(o.size for o in outs)
        # no_grad and autograd.Function rules make the two modes differ: keep the one asked for
        if all(_real_float(o) for o in outs) and mode_specific_count() == seen:
            if switches_mode(mode is jax.jacrev, n_in, n_out):
                try:
                    return _OTHER_MODE[mode](body, argnums=argnums, has_aux=True)(*flat_args)
                except _OTHER_MODE_CANNOT_TRACE[mode]:
                    pass
    return mode(body, argnums=argnums, has_aux=True)(*flat_args)


def _real_float(a) -> bool:
    return jnp.issubdtype(a.dtype, jnp.floating)
