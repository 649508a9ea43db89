"""``torch.utils.checkpoint`` inside captured code: JAX rematerialises the region.

torch's checkpoint keeps a region's inputs and recomputes its activations when the
backward pass reaches it. Here a checkpointed call becomes one JAX function of its
inputs and of the outer values it reads (parameters, PRNG keys): the region is traced
once into a jaxpr, forward mode differentiates it as written, and reverse mode keeps
only those inputs and recomputes the region's forward inside the backward pass.

Why not ``jax.checkpoint`` itself: XLA:CPU removes the optimization barriers that keep
a recomputation apart from the forward pass, merges the two (CSE), and schedules a
recomputation as soon as its inputs exist, so on CPU ``jax.checkpoint`` saves no
activation memory at all. Here the backward recomputes inside a conditional that
XLA:CPU cannot see through and that takes the cotangents as operands: it is neither
merged with the forward nor run before the backward reaches it. Other platforms keep
optimization barriers, so there a barrier over inputs and cotangents does the same.

How calls get here:

- ``use_reentrant=True`` (also when it is not passed): ``CheckpointFunction.apply``,
  which every capture routes to ``autograd_function.call_function``, which calls
  :func:`call_reentrant`.
- ``use_reentrant=False``: torch's ``checkpoint`` drives the module attribute
  ``_checkpoint_without_reentrant_generator`` around its own call of the function.
  While a capture runs, that attribute is :func:`_generator` (see
  :func:`intercept_checkpoint`): it rematerialises the region before torch's call,
  and afterwards gives the tensors that call returned the rematerialised values, so
  the call's own computation is dead code that XLA drops.

Gradients are JAX's, so they do not depend on ``use_reentrant``: unlike eager torch's
reentrant variant, parameters inside a region get gradients even when no input of the
region requires grad.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import torch
from jax import lax
from jax.extend.core import Literal
from torch.utils import _pytree as pytree

from ._compat import checkpoint_call_result, checkpoint_generator, torch_checkpoint_module
from .capture_patch import CapturePatch
from .grad_mode import forward_rule, reverse_call
from .tensor import JaxTensor, array_of, current_context, lift, pop_context, push_context

# What a region may return besides tensors (anything else could hide a traced value).
_PLAIN = (type(None), bool, int, float, complex, str, bytes, torch.dtype, torch.device, torch.Size, torch.layout)


class _Region:
    """One checkpointed call ``fn(*args, **kwargs)``, traced and rematerialised."""

    def __init__(self, fn: Callable, args: tuple, kwargs: dict, ctx):
        self.fn = fn
        self.ctx = ctx
        self.leaves, self.spec = pytree.tree_flatten((args, kwargs))
        self.positions = [i for i, x in enumerate(self.leaves) if isinstance(x, torch.Tensor)]
        self.out_spec = None
        self.out_tensors: list[int] = []  # output leaves that are tensors
        self.out_static: dict[int, Any] = {}
        self.arg_writes: list[int] = []  # input leaves the region wrote in place
        self.lifted_writes: list[torch.Tensor] = []  # outer tensors it wrote in place
        closed = self._trace([array_of(self.leaves[i]) for i in self.positions])
        inner = set(closed.jaxpr.invars) | set(closed.jaxpr.constvars)
        n_out = len(self.out_tensors)
        # outputs that are an input or outer value passed through unchanged
        self.passthrough = [isinstance(v, Literal) or v in inner for v in closed.jaxpr.outvars[:n_out]]
        values = _rematerialise(closed, [array_of(self.leaves[i]) for i in self.positions])
        self.values = values[:n_out]
        self.writes = values[n_out:]

    def _trace(self, arrays: list):
        """The region as a closed jaxpr of its tensor inputs (outer values it reads are consts)."""
        levels = []
        level = self.ctx
        while level is not None:
            levels.append(level)
            level = level.parent
        unkeyed = [lv for lv in levels if lv.key is None]
        closed = jax.make_jaxpr(self._body)(*arrays)
        # A random op in the region may have made some level's first PRNG key: a value of
        # the region's trace, which the jaxpr holds and which must not outlive it there.
        for lv in unkeyed:
            lv.key = None
        return closed

    def _body(self, *arrays):
        child = self.ctx.child()
        inputs = [JaxTensor(a) for a in arrays]
        wrapped = list(self.leaves)
        for i, t in zip(self.positions, inputs):
            wrapped[i] = t
        args, kwargs = pytree.tree_unflatten(wrapped, self.spec)
        push_context(child)
        try:
            out = self.fn(*args, **kwargs)
            leaves, self.out_spec = pytree.tree_flatten(out)
            self.out_tensors = [k for k, x in enumerate(leaves) if isinstance(x, torch.Tensor)]
            out_arrays = [array_of(leaves[k]) for k in self.out_tensors]
        finally:
            pop_context()
        self.out_static = {k: x for k, x in enumerate(leaves) if not isinstance(x, torch.Tensor)}
        for x in self.out_static.values():
            if not isinstance(x, _PLAIN):
                raise TypeError(
                    f"torchjax: a checkpointed function returned an object of type {type(x).__name__}, which "
                    "is not a tensor, a Python scalar or a container torch's pytree knows. Return tensors (for "
                    "transformers models: use_cache=False), or register the type with "
                    "torch.utils._pytree.register_pytree_node."
                )
        written = [(i, t) for i, t in zip(self.positions, inputs) if t.mutated]
        self.arg_writes = [i for i, _ in written]
        lifted = child.mutated_lifted()
        self.lifted_writes = [t for t, _, _ in lifted]
        return out_arrays + [t.value for _, t in written] + [jt.value for _, jt, _ in lifted]

    def apply_writes(self) -> None:
        """The region's in-place writes to its inputs and to outer tensors, one level up."""
        n = len(self.arg_writes)
        for i, v in zip(self.arg_writes, self.writes[:n]):
            lift(self.leaves[i]).set_value(v)
        for t, v in zip(self.lifted_writes, self.writes[n:]):
            self.ctx.lift(t).set_value(v)

    def outputs(self):
        """The region's output, its tensors holding the rematerialised values."""
        it = iter(self.values)
        n = self.out_spec.num_leaves
        leaves = [self.out_static[k] if k in self.out_static else JaxTensor(next(it)) for k in range(n)]
        return pytree.tree_unflatten(leaves, self.out_spec)

    def give(self, result) -> bool:
        """Put the rematerialised values into the tensors of ``result``, what torch's own call
        of the region returned; False if its structure is not the traced one."""
        leaves, spec = pytree.tree_flatten(result)
        if spec != self.out_spec:
            return False
        storages = {id(lift(self.leaves[i])._storage) for i in self.positions}
        for k, value, passthrough in zip(self.out_tensors, self.values, self.passthrough):
            t = leaves[k]
            # only a tensor the call made: never an input, a view (a write would reach its
            # base) or an outer tensor passed through
            if passthrough or not isinstance(t, JaxTensor) or t._view_fn is not None or id(t._storage) in storages:
                continue
            if tuple(t.shape) == tuple(value.shape) and t.value.dtype == value.dtype:
                t.set_value(value)
        return True


def _inexact(x) -> bool:
    return jnp.issubdtype(jnp.result_type(x), jnp.inexact)


def _rematerialise(closed, arrays: list) -> list:
    """Evaluate ``closed`` on ``arrays``; its reverse-mode derivative keeps only the inputs.

    The traced values the jaxpr closes over (parameters, keys of the enclosing trace)
    become explicit inputs: the backward may run after that trace has ended (a
    ``vjp_fn`` called later), so it sees only what it is given as residuals.
    """
    jaxpr = closed.jaxpr
    traced = [i for i, c in enumerate(closed.consts) if isinstance(c, jax.core.Tracer)]
    concrete = [None if i in traced else c for i, c in enumerate(closed.consts)]
    args = [closed.consts[i] for i in traced] + list(arrays)
    n_traced = len(traced)

    def primal(*xs) -> list:
        values = list(concrete)
        for i, x in zip(traced, xs[:n_traced]):
            values[i] = x
        return jax.core.eval_jaxpr(jaxpr, values, *xs[n_traced:])

    diff = [i for i, a in enumerate(args) if _inexact(a)]
    if not diff:
        return primal(*args)
    out_avals = list(closed.out_avals)
    diff_out = [k for k, a in enumerate(out_avals) if _inexact(a.dtype)]

    def recompute(res: list, cts: list) -> list:
        def of_diff(*d):
            full = list(res)
            for i, x in zip(diff, d):
                full[i] = x
            return primal(*full)

        _, pull = jax.vjp(of_diff, *[res[i] for i in diff])
        full_cts = [np.zeros(a.shape, jax.dtypes.float0) for a in out_avals]
        for k, c in zip(diff_out, cts):
            full_cts[k] = c
        return list(pull(full_cts))

    def nothing(res: list, cts: list) -> list:
        return [jnp.zeros(res[i].shape, res[i].dtype) for i in diff]

    def backward(res, cts):
        return _when_cotangents_exist(recompute, nothing, list(res), list(cts))

    region = jax.custom_jvp(primal)

    @region.defjvp
    def rule(primals, tangents):
        out = region(*primals)
        _, forward = jax.jvp(primal, tuple(primals), tuple(tangents))
        avals = tuple(jax.typeof(out[k]) for k in diff_out)
        back = reverse_call(backward, list(primals), [tangents[i] for i in diff], avals)
        tangent_out = [np.zeros(o.shape, jax.dtypes.float0) for o in out]
        for k, b in zip(diff_out, back):
            tangent_out[k] = forward_rule(forward[k]) + b
        return out, tangent_out

    return region(*args)


def _when_cotangents_exist(fn: Callable, zeros: Callable, res: list, cts: list) -> list:
    """``fn(res, cts)``, computed apart from the forward pass and only once ``cts`` exist
    (``zeros`` gives zeros shaped as its result)."""

    def cpu(res, cts):
        # Always true, but XLA cannot know it: the recomputation stays a computation of
        # its own, which CSE cannot merge with the forward, and the cotangents are its
        # operands, so it cannot run before them.
        pred = lax.rng_uniform(np.float32(0), np.float32(1), ()) < 2
        return lax.cond(pred, fn, zeros, res, cts)

    def other(res, cts):
        return fn(*lax.optimization_barrier((res, cts)))

    return lax.platform_dependent(res, cts, cpu=cpu, default=other)


def call_reentrant(function: Callable, args: tuple):
    """``checkpoint(function, *args, use_reentrant=True)`` inside a capture."""
    if not torch.is_grad_enabled():  # torch records nothing, so there is nothing to recompute
        return function(*args)
    region = _Region(function, args, {}, current_context())
    region.apply_writes()
    return region.outputs()


# --------------------------------------------------------------------------- use_reentrant=False

_warned_unmatched = False
_MISSING = object()  # no result found


def _generator(fn, preserve_rng_state, context_fn, determinism_check, debug, early_stop, *args, **kwargs):
    """torch's ``_checkpoint_without_reentrant_generator`` while a capture runs: torch's
    ``checkpoint`` calls ``next`` on it, then ``fn(*args, **kwargs)``, then ``next`` again.

    ``context_fn``, ``determinism_check`` and ``debug`` steer torch's own saving and
    recomputation, which does not happen here: the whole region is rematerialised.
    """
    ctx = current_context()
    if not _GENERATOR.capturing or ctx is None:
        yield from checkpoint_generator(
            fn, preserve_rng_state, context_fn, determinism_check, debug, early_stop, *args, **kwargs
        )
        return
    if not torch.is_grad_enabled():  # as torch: nothing to recompute
        yield
        return
    region = _Region(fn, args, kwargs, ctx)
    yield
    if not region.give(checkpoint_call_result(sys._getframe(1), _MISSING)):
        _warn_unmatched()


def _warn_unmatched() -> None:
    global _warned_unmatched
    if not _warned_unmatched:
        _warned_unmatched = True
        warnings.warn(
            "torchjax: a checkpoint(use_reentrant=False) region ran without rematerialisation (its caller is "
            "not torch.utils.checkpoint.checkpoint, or its result changed structure between two calls); "
            "gradients are unchanged, only activation memory is not saved. use_reentrant=True avoids this.",
            RuntimeWarning,
            stacklevel=3,
        )


_GENERATOR = CapturePatch(torch_checkpoint_module, "_checkpoint_without_reentrant_generator", _generator)


def intercept_checkpoint():
    """While this thread captures, ``checkpoint(use_reentrant=False)`` comes here.

    The generator is a module attribute that ``checkpoint`` looks up at every call, so
    replacing it reaches callers that imported ``checkpoint`` itself (transformers).
    Other threads, and this one outside a capture, get torch's generator; torch's is
    put back when the last capture ends.
    """
    return _GENERATOR.held()
