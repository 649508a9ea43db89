"""torch's rules for where gradients flow, as JAX operations.

torch decides per op whether autograd records it; JAX differentiates everything it
traces. Three torch constructs say "do not record", and they differ in what they stop:

- ``detach()`` / ``.data`` and ``torch.inference_mode()`` give a tensor with no
  gradient at all, forward or reverse: :func:`jax.lax.stop_gradient`.
- ``torch.no_grad()`` / ``set_grad_enabled(False)`` stop *reverse* mode only; torch's
  forward-mode AD (``jvp``, ``jacfwd``) still sees through them. :func:`stop_reverse`
  is the identity whose tangent flows forward and whose cotangent is zero.
- An in-place write that autograd does not record (under ``no_grad``, or through a
  detached alias such as ``p.data.mul_(2)``) changes the tensor's value but not its
  gradient history: :func:`untracked_write` (reverse mode still reaches the old value;
  forward mode follows the new one, as torch's does under ``no_grad``) and
  :func:`detached_write` (both modes keep the old value's derivative).

JAX derives reverse mode by transposing forward mode, so a tangent that flows forward
but not backward needs two small linear primitives: ``forward_only`` (evaluates to its
input, transposes to zero) and ``reverse_call`` (evaluates to zero, transposes to a
given function, e.g. the identity or an ``autograd.Function``'s ``backward``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.extend.core import Primitive

from ._compat import (
    ad_deflinear2,
    ad_is_undefined_primal,
    ad_primitive_jvps,
    ad_primitive_transposes,
    ad_Zero,
    batching_primitive_batchers,
    mlir_lower_fun,
    mlir_register_lowering,
)

# --------------------------------------------------------------------------- forward_only

forward_only_p = Primitive("torchjax_forward_only")
forward_only_p.def_impl(lambda t: t)
forward_only_p.def_abstract_eval(lambda t: t)
ad_deflinear2(forward_only_p, lambda ct, t: [ad_Zero(t.aval)])
batching_primitive_batchers[forward_only_p] = lambda args, dims: (forward_only_p.bind(*args), dims[0])
mlir_register_lowering(forward_only_p, mlir_lower_fun(lambda t: t, multiple_results=False))


def forward_only(t):
    """A tangent that forward mode sees and reverse mode does not (computed under no_grad:
    enclosing reverse-mode levels do not record its computation either)."""
    return forward_only_p.bind(t)


forward_rule_p = Primitive("torchjax_forward_rule")
forward_rule_p.def_impl(lambda t: t)
forward_rule_p.def_abstract_eval(lambda t: t)
ad_primitive_transposes[forward_rule_p] = lambda ct, t: [ad_Zero(t.aval)]
# an enclosing level differentiates the rule's computation as written
ad_primitive_jvps[forward_rule_p] = lambda primals, tangents: (
    forward_rule_p.bind(primals[0]),
    jnp.zeros(primals[0].shape, primals[0].dtype) if type(tangents[0]) is ad_Zero else tangents[0],
)
batching_primitive_batchers[forward_rule_p] = lambda args, dims: (forward_rule_p.bind(*args), dims[0])
mlir_register_lowering(forward_rule_p, mlir_lower_fun(lambda t: t, multiple_results=False))


def forward_rule(t):
    """The tangent an ``autograd.Function``'s ``jvp`` computed: forward mode at this level
    sees it, this level's reverse mode does not (it calls ``backward``), and enclosing
    levels differentiate the ``jvp`` code itself, as torch records it."""
    return forward_rule_p.bind(t)


# --------------------------------------------------------------------------- reverse_call

reverse_call_p = Primitive("torchjax_reverse_call")
reverse_call_p.multiple_results = True


def _zeros(*args, out_avals, **_):
    return [jnp.zeros(a.shape, a.dtype) for a in out_avals]


reverse_call_p.def_impl(_zeros)
reverse_call_p.def_abstract_eval(lambda *args, out_avals, **_: list(out_avals))
mlir_register_lowering(reverse_call_p, mlir_lower_fun(_zeros, multiple_results=True))


def _reverse_call_jvp(primals, tangents, *, fn, n_res, out_avals):
    out = reverse_call_p.bind(*primals, fn=fn, n_res=n_res, out_avals=out_avals)
    lin = [jnp.zeros(p.shape, p.dtype) if type(t) is ad_Zero else t for p, t in zip(primals[n_res:], tangents[n_res:])]
    return out, reverse_call_p.bind(*primals[:n_res], *lin, fn=fn, n_res=n_res, out_avals=out_avals)


def _reverse_call_transpose(cts, *args, fn, n_res, out_avals):
    residuals = list(args[:n_res])
    if any(ad_is_undefined_primal(r) for r in residuals):  # pragma: no cover - a misuse of the primitive
        raise TypeError("reverse_call: residual operands must be known values")
    cts = [jnp.zeros(a.shape, a.dtype) if type(c) is ad_Zero else c for c, a in zip(cts, out_avals)]
    ct_in = fn(residuals, cts)
    return [None] * n_res + list(ct_in)


def _reverse_call_batch(args, dims, *, fn, n_res, out_avals):
    size = next(a.shape[d] for a, d in zip(args, dims) if d is not None)
    res_axes = [None if d is None else 0 for d in dims[:n_res]]
    moved = [a if d is None else jnp.moveaxis(a, d, 0) for a, d in zip(args, dims)]
    # linear operands are all made batched, so that their cotangents come back batched
    lin = [jnp.broadcast_to(a, (size, *a.shape)) if d is None else a for a, d in zip(moved[n_res:], dims[n_res:])]
    batched_fn = _VmappedBackward(fn, tuple(res_axes))
    avals = tuple(a.update(shape=(size, *a.shape)) for a in out_avals)
    out = reverse_call_p.bind(*moved[:n_res], *lin, fn=batched_fn, n_res=n_res, out_avals=avals)
    return out, [0] * len(out)


class _VmappedBackward:
    """``fn`` vmapped over the batch axis 0 of its cotangents (and of batched residuals)."""

    def __init__(self, fn: Callable, res_axes: tuple):
        self.fn, self.res_axes = fn, res_axes

    def __call__(self, residuals, cts):
        return jax.vmap(lambda r, c: list(self.fn(r, c)), in_axes=(list(self.res_axes), 0))(residuals, cts)


ad_primitive_jvps[reverse_call_p] = _reverse_call_jvp
ad_primitive_transposes[reverse_call_p] = _reverse_call_transpose
batching_primitive_batchers[reverse_call_p] = _reverse_call_batch


def reverse_call(fn: Callable, residuals: list, linear: list, out_avals: tuple) -> list:
    """Zero-valued tangents whose transpose is ``fn(residuals, cotangents)``.

    ``fn`` returns one cotangent per ``linear`` operand; the outputs have ``out_avals``.
    """
    return reverse_call_p.bind(*residuals, *linear, fn=fn, n_res=len(residuals), out_avals=tuple(out_avals))


# --------------------------------------------------------------------------- missing_tangent

missing_tangent_p = Primitive("torchjax_missing_tangent")
missing_tangent_p.multiple_results = True


def _missing(*args, error, batched_error, out_avals):
    raise error[0](error[1])


def _missing_lowering(ctx, *args, error, batched_error, out_avals):
    raise error[0](error[1])


def _missing_jvp(primals, tangents, **params):
    lin = [jnp.zeros(p.shape, p.dtype) if type(t) is ad_Zero else t for p, t in zip(primals, tangents)]
    return missing_tangent_p.bind(*primals, **params), missing_tangent_p.bind(*lin, **params)


def _missing_batch(args, dims, *, error, batched_error, out_avals):
    size = next(a.shape[d] for a, d in zip(args, dims) if d is not None)
    moved = [jnp.broadcast_to(a, (size, *a.shape)) if d is None else jnp.moveaxis(a, d, 0) for a, d in zip(args, dims)]
    avals = tuple(a.update(shape=(size, *a.shape)) for a in out_avals)
    error = batched_error or error
    out = missing_tangent_p.bind(*moved, error=error, batched_error=batched_error, out_avals=avals)
    return out, [0] * len(avals)


missing_tangent_p.def_impl(_missing)
missing_tangent_p.def_abstract_eval(lambda *args, out_avals, **_: list(out_avals))
mlir_register_lowering(missing_tangent_p, _missing_lowering)
ad_primitive_jvps[missing_tangent_p] = _missing_jvp
ad_primitive_transposes[missing_tangent_p] = lambda cts, *args, **_: [
    ad_Zero(a.aval) if ad_is_undefined_primal(a) else None for a in args
]
batching_primitive_batchers[missing_tangent_p] = _missing_batch


def missing_tangent(error: tuple, tangents: list, out_avals: tuple, batched_error: tuple | None = None) -> list:
    """Tangents that forward mode cannot compute: a program that needs them raises
    ``error = (exception class, message)`` when it is compiled or run (``batched_error``
    instead, if they are computed under vmap); reverse mode never evaluates them."""
    return missing_tangent_p.bind(*tangents, error=error, batched_error=batched_error, out_avals=tuple(out_avals))


# --------------------------------------------------------------------------- torch's rules


@jax.custom_jvp
def stop_reverse(x):
    """The value of ``x``; forward-mode tangents pass, reverse-mode cotangents stop (``no_grad``)."""
    note_mode_specific()
    return x


@stop_reverse.defjvp
def _stop_reverse_jvp(primals, tangents):
    # The primal output goes through stop_reverse again: an enclosing transform (grad of
    # grad) must not record it either.
    return stop_reverse(primals[0]), forward_only(tangents[0])


def _identity_backward(residuals, cts):
    return cts


@jax.custom_jvp
def untracked_write(old, new):
    """``new``'s value written over ``old`` where autograd does not record the write (``no_grad``)."""
    note_mode_specific()
    return new


@untracked_write.defjvp
def _untracked_write_jvp(primals, tangents):
    old, new = primals
    old_t, new_t = tangents
    aval = jax.typeof(old_t)
    (back,) = reverse_call(_identity_backward, [], [old_t], (aval,))
    return untracked_write(old, new), forward_only(new_t) + back


@jax.custom_jvp
def detached_write(old, new):
    """``new``'s value written over ``old`` through a detached alias: ``old``'s derivative stays."""
    return new


@detached_write.defjvp
def _detached_write_jvp(primals, tangents):
    return detached_write(*primals), tangents[0]


class _ModeSpecific(threading.local):
    count = 0


_mode_specific = _ModeSpecific()


def note_mode_specific() -> None:
    """Record that the code being traced differentiates differently in forward and
    reverse mode (``no_grad``, an ``autograd.Function``): a Jacobian of it must run in
    the mode the user asked for."""
    _mode_specific.count += 1


def mode_specific_count() -> int:
    return _mode_specific.count


def has_tangent_space(x) -> bool:
    """Whether ``x`` is a traced inexact array: only those can carry a derivative."""
    return isinstance(x, jax.core.Tracer) and jnp.issubdtype(x.dtype, jnp.inexact)
