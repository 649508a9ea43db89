"""``torch.autograd.Function`` inside captured code: its ``backward`` becomes JAX's VJP.

torch runs ``Function.apply`` before the dispatcher, so no dispatch mode sees it.
While a capture runs on some thread, ``Function.apply`` is replaced by a function that
sends calls made on a capturing thread here and every other call to torch's own
``apply`` unchanged (:func:`intercept_apply`); the original is put back when the last
capture ends.

- A Function becomes a ``jax.custom_jvp`` whose tangent has two terms: forward mode
  sees the ``jvp`` staticmethod's (:func:`grad_mode.forward_only`; without one, a
  program that needs it raises torch.func's ``NotImplementedError``), and reverse mode
  calls ``backward``, through a zero-valued linear term whose transpose is ``backward``
  (:func:`grad_mode.reverse_call`). So each mode runs the rule torch would run.
- ``generate_vmap_rule=True`` lets JAX batch forward and backward; a ``vmap``
  staticmethod becomes a ``jax.custom_batching.custom_vmap`` rule.

Under ``torchjax.func`` the rules and errors are torch.func's: an old-style
``forward(ctx, ...)`` is refused, and so is vmap without a vmap rule. ``to_jax`` and
``jit`` also take old-style Functions.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import torch
from jax.custom_batching import custom_vmap
from torch.utils import _pytree as pytree

from . import dtypes
from ._compat import CheckpointFunction, FunctionBase, SingleLevelFunction, is_setup_context_defined
from .capture_patch import CapturePatch
from .checkpoint import call_reentrant
from .dispatch import CaptureMode
from .grad_mode import forward_rule, missing_tangent, note_mode_specific, reverse_call
from .tensor import JaxTensor, array_of, current_context, lift, pop_context, push_context

_SETUP_CONTEXT_ERROR = (
    "In order to use an autograd.Function with functorch transforms (vmap, grad, jvp, jacrev, ...), it must "
    "override the setup_context staticmethod. For more details, please see "
    "https://pytorch.org/docs/main/notes/extending.func.html"
)


class FunctionCtx:
    """The ``ctx`` a Function's ``forward``/``setup_context``, ``backward`` and ``jvp`` see."""

    def __init__(self, needs_input_grad: tuple[bool, ...]):
        self.needs_input_grad = needs_input_grad
        self.to_save: tuple = ()
        self.saved_for_forward: tuple = ()
        self.non_differentiable: tuple = ()
        self.dirty: tuple = ()
        self.materialize_grads = True
        self.in_jvp = False

    def save_for_backward(self, *tensors) -> None:
        self.to_save = tensors

    def save_for_forward(self, *tensors) -> None:
        self.saved_for_forward = tensors

    @property
    def saved_tensors(self) -> tuple:
        """What ``save_for_backward`` kept (``save_for_forward``'s, inside ``jvp``)."""
        return tuple(self.saved_for_forward if self.in_jvp else self.to_save)

    def mark_non_differentiable(self, *tensors) -> None:
        self.non_differentiable = tensors

    def mark_dirty(self, *tensors) -> None:
        self.dirty = tensors

    def set_materialize_grads(self, value: bool) -> None:
        self.materialize_grads = value


_OWN = frozenset(vars(FunctionCtx((False,))))


class _Residuals:
    """The ctx state a backward needs: arrays travel as JAX residuals, the rest stays here."""

    def __init__(self):
        self.spec = None
        self.static: dict[int, Any] = {}

    def split(self, ctx: FunctionCtx, replace: dict[int, Any]) -> list:
        """The arrays of ``ctx``'s tensors; ``replace`` maps a tensor's id to the array to use."""
        state = {k: v for k, v in vars(ctx).items() if k not in _OWN or k in ("to_save", "saved_for_forward")}
        leaves, self.spec = pytree.tree_flatten(state)
        self.static = {i: x for i, x in enumerate(leaves) if not isinstance(x, torch.Tensor)}
        return [replace[id(x)] if id(x) in replace else array_of(x) for x in leaves if isinstance(x, torch.Tensor)]

    def rebuild(self, arrays: list, needs_input_grad: tuple) -> FunctionCtx:
        it = iter(arrays)
        n = self.spec.num_leaves
        leaves = [self.static[i] if i in self.static else JaxTensor(next(it)) for i in range(n)]
        ctx = FunctionCtx(needs_input_grad)
        for k, v in pytree.tree_unflatten(leaves, self.spec).items():
            setattr(ctx, k, v)
        return ctx


class _Call:
    """One ``MyFunction.apply(*args)`` seen by a capture."""

    def __init__(self, cls, args: tuple, strict: bool, fresh: Callable):
        self.cls = cls
        self.fresh = fresh  # makes the context backward, jvp and vmap rules run in
        self.args = args
        self.strict = strict
        self.new_style = is_setup_context_defined(cls.setup_context)
        self.positions = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]
        self.differentiable = [i for i in self.positions if args[i].is_floating_point() or args[i].is_complex()]
        self.needs_input_grad = tuple(i in self.differentiable for i in range(len(args)))
        self.out_tree = None  # the forward's output structure, set when it runs
        self.out_static: dict[int, Any] = {}
        self.non_differentiable: list[int] = []
        self.dirty: list[tuple[int, int]] = []  # (output leaf, input position) of in-place outputs
        self.produced: list = []  # forward's output tensors, last run

    @property
    def name(self) -> str:
        return self.cls.__name__

    # ---------------------------------------------------------------- forward

    def forward(self, arrays: list) -> tuple[list, FunctionCtx]:
        """Run ``forward`` (and ``setup_context``) on these input arrays: output arrays and ctx."""
        targs = list(self.args)
        for i, a in zip(self.positions, arrays):
            targs[i] = JaxTensor(a)
        ctx = FunctionCtx(self.needs_input_grad)
        with torch.no_grad():  # as torch runs it
            if self.new_style:
                out = self.cls.forward(*targs)
                self.cls.setup_context(ctx, tuple(targs), out)
            else:
                out = self.cls.forward(ctx, *targs)
        leaves, self.out_tree = pytree.tree_flatten(out)
        self.out_static = {i: x for i, x in enumerate(leaves) if not isinstance(x, torch.Tensor)}
        tensors = [(i, x) for i, x in enumerate(leaves) if isinstance(x, torch.Tensor)]
        nondiff = {id(t) for t in ctx.non_differentiable}
        self.non_differentiable = [k for k, (_, x) in enumerate(tensors) if id(x) in nondiff]
        inputs = {id(targs[i]): i for i in self.positions}
        self.dirty = [(k, inputs[id(x)]) for k, (_, x) in enumerate(tensors) if id(x) in {id(d) for d in ctx.dirty}]
        self.produced = [x for _, x in tensors]
        return [array_of(x) for _, x in tensors], ctx

    # ---------------------------------------------------------------- backward

    def backward(self, residuals: _Residuals, res_arrays: list, cts: list) -> list:
        """Cotangents of the differentiable inputs from the Function's ``backward``."""
        ctx = residuals.rebuild(res_arrays, self.needs_input_grad)
        grads_out = self._per_output([None if c is None else JaxTensor(c) for c in cts])
        with _scope(self.fresh), torch.enable_grad():
            result = self.cls.backward(ctx, *grads_out)
        result = result if isinstance(result, tuple) else (result,)
        if len(result) != len(self.args):
            raise RuntimeError(
                f"function {self.name}Backward returned an incorrect number of gradients "
                f"(expected {len(self.args)}, got {len(result)})"
            )
        return [self._conform(result[i], i) for i in self.differentiable]

    def _per_output(self, tensors: list) -> list:
        """One value per forward output leaf (None for the non-tensor ones)."""
        it = iter(tensors)
        n = self.out_tree.num_leaves
        return [None if i in self.out_static else next(it) for i in range(n)]

    def _conform(self, grad, i: int):
        x = self.args[i]
        shape, dtype = tuple(x.shape), _jax_dtype(x)
        if grad is None:
            return jnp.zeros(shape, dtype)
        g = array_of(grad)
        if tuple(g.shape) != shape:
            if not _expandable(shape, tuple(g.shape)):
                raise RuntimeError(
                    f"Function {self.name}Backward returned an invalid gradient at index {i} - got "
                    f"{list(g.shape)} but expected shape compatible with {list(shape)}"
                )
            g = _sum_to(g, shape)
        return g.astype(dtype)

    # ---------------------------------------------------------------- jvp

    def jvp(self, ctx: FunctionCtx, tangents: list) -> list:
        full: list = [None] * len(self.args)
        for i, t in zip(self.differentiable, tangents):
            full[i] = JaxTensor(t)
        ctx.in_jvp = True
        with _scope(self.fresh):
            result = self.cls.jvp(ctx, *full)
        ctx.in_jvp = False
        result = list(result) if isinstance(result, tuple) else [result]
        return [array_of(t) for t in result]


def _jax_dtype(t: torch.Tensor):
    return dtypes.to_jax_dtype(t.dtype)


def _expandable(shape: tuple, to: tuple) -> bool:
    if len(shape) > len(to):
        return False
    return all(s == t or s == 1 for s, t in zip(shape[::-1], to[::-1]))


def _sum_to(g, shape: tuple):
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead))) if lead else g
    axes = tuple(i for i, (s, t) in enumerate(zip(shape, g.shape)) if s == 1 and t != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


@contextlib.contextmanager
def _scope(fresh: Callable):
    """A capture of its own for a rule that JAX may call after the enclosing capture
    ended (``backward`` runs when JAX transposes): factory ops and lifted tensors land
    in the context ``fresh()`` makes."""
    push_context(fresh())
    try:
        with CaptureMode():
            yield
    finally:
        pop_context()


def call_function(cls, args: tuple, kwargs: dict):
    """``cls.apply(*args, **kwargs)`` inside a capture."""
    if cls is CheckpointFunction:  # checkpoint(fn, *args, use_reentrant=True)
        return call_reentrant(args[0], args[2:])
    ctx = current_context()
    strict = ctx.torch_func
    if strict and not is_setup_context_defined(cls.setup_context):
        raise RuntimeError(_SETUP_CONTEXT_ERROR)
    if is_setup_context_defined(cls.setup_context):
        bound = inspect.signature(cls.forward).bind(*args, **kwargs)
        bound.apply_defaults()
        args, kwargs = bound.args, bound.kwargs
    if kwargs:
        raise TypeError(f"{cls.__name__}.apply: keyword arguments are not supported by autograd.Function")
    call = _Call(cls, tuple(args), strict, ctx.fresh)
    note_mode_specific()
    arrays = [array_of(args[i]) for i in call.positions]
    diff_arrays = [array_of(args[i]) for i in call.differentiable]
    fixed = {i: a for i, a in zip(call.positions, arrays) if i not in call.differentiable}
    if not call.differentiable:
        out_arrays = _primal(call, fixed)()
    else:
        out_arrays = _custom_jvp(call, fixed, cls.jvp is not SingleLevelFunction.jvp)(*diff_arrays)
    return _outputs(call, out_arrays)


def _all_arrays(call: _Call, fixed: dict, diff: tuple) -> list:
    it = iter(diff)
    return [fixed[i] if i in fixed else next(it) for i in call.positions]


def _primal(call: _Call, fixed: dict) -> Callable:
    def primal(*diff):
        return call.forward(_all_arrays(call, fixed, diff))[0]

    return _with_vmap_rule(call, fixed, primal)


_NO_JVP = "You must implement the jvp function for custom autograd.Function to use it with forward mode AD."


def _custom_jvp(call: _Call, fixed: dict, has_jvp: bool):
    residuals = _Residuals()
    primal = _primal(call, fixed)
    f = jax.custom_jvp(primal)

    @f.defjvp
    def rule(primals, tangents):
        out = f(*primals)  # through f again: an enclosing transform applies the rule too
        _, ctx = call.forward(_all_arrays(call, fixed, primals))
        diff = [k for k, o in enumerate(out) if jnp.issubdtype(o.dtype, jnp.inexact)]
        avals = tuple(jax.typeof(out[k]) for k in diff)
        if has_jvp:
            jvp_out = call.jvp(ctx, list(tangents))
            forward = [jvp_out[k].astype(out[k].dtype) for k in diff]
        else:  # as torch: forward mode raises; reverse mode never evaluates these
            batched = None if _vmappable(call) else (RuntimeError, _no_vmap(call))
            forward = missing_tangent((NotImplementedError, _NO_JVP), list(tangents), avals, batched)
        # A saved output is the Function's output as enclosing levels see it (their rule
        # applies to it), not forward's value computed under no_grad.
        res = residuals.split(ctx, {id(t): o for t, o in zip(call.produced, out)})

        def backward(res_arrays, cts):
            full: list = [None] * len(out)
            for k, c in zip(diff, cts):
                full[k] = c
            return call.backward(residuals, list(res_arrays), full)

        back = reverse_call(backward, res, list(tangents), avals)
        tangent_out = [np.zeros(o.shape, jax.dtypes.float0) for o in out]
        for k, t, b in zip(diff, forward, back):
            tangent_out[k] = forward_rule(t) + b
        return out, tangent_out

    return f


def _no_vmap(call: _Call) -> str:
    return (
        f"You tried to vmap over {call.name}, but it does not have vmap support. Please override and implement the "
        "vmap staticmethod or set generate_vmap_rule=True. For more details, please see "
        "https://pytorch.org/docs/main/notes/extending.func.html"
    )


def _vmappable(call: _Call) -> bool:
    """Whether vmap may batch the Function: always outside torch.func's rules."""
    cls = call.cls
    return not call.strict or getattr(cls, "generate_vmap_rule", False) or cls.vmap is not torch.autograd.Function.vmap


def _with_vmap_rule(call: _Call, fixed: dict, primal: Callable) -> Callable:
    cls = call.cls
    user_rule = cls.vmap is not torch.autograd.Function.vmap
    if getattr(cls, "generate_vmap_rule", False) or not (call.strict or user_rule):
        return primal  # JAX batches forward and backward as written
    batched = custom_vmap(primal)

    @batched.def_vmap
    def rule(axis_size, in_batched, *diff):
        if not user_rule:
            raise RuntimeError(_no_vmap(call))
        arrays = _all_arrays(call, fixed, diff)
        flags = dict(zip(call.differentiable, in_batched))
        targs = list(call.args)
        in_dims: list = [None] * len(call.args)
        for i, a in zip(call.positions, arrays):
            targs[i] = JaxTensor(a)
            in_dims[i] = 0 if flags.get(i, False) else None
        info = _VmapInfo(axis_size, "error" if current_context() is None else "different")
        with _scope(call.fresh):
            out, out_dims = cls.vmap(info, tuple(in_dims), *targs)
        leaves = pytree.tree_leaves(out)
        dims = pytree.tree_leaves(out_dims) if isinstance(out_dims, (tuple, list)) else [out_dims] * len(leaves)
        arrays_out = [array_of(x) for x in leaves if isinstance(x, torch.Tensor)]
        moved = [a if d is None else jnp.moveaxis(a, d, 0) for a, d in zip(arrays_out, dims)]
        return moved, [d is not None for d in dims]

    return batched


class _VmapInfo:
    def __init__(self, batch_size: int, randomness: str):
        self.batch_size = batch_size
        self.randomness = randomness


def _outputs(call: _Call, out_arrays: list):
    tensors = [JaxTensor(a) for a in out_arrays]
    for k in call.non_differentiable:
        tensors[k] = JaxTensor(jax.lax.stop_gradient(out_arrays[k]))
    for k, i in call.dirty:  # in place: the caller's tensor takes the new value and is returned
        target = call.args[i]
        lift(target).set_value(out_arrays[k])
        tensors[k] = target
    it = iter(tensors)
    leaves = [call.out_static[i] if i in call.out_static else next(it) for i in range(call.out_tree.num_leaves)]
    return pytree.tree_unflatten(leaves, call.out_tree)


# --------------------------------------------------------------------------- interception


# ``Function.apply`` ends in ``super().apply(...)``, which finds ``apply`` on
# ``_SingleLevelFunction`` before torch's C implementation: setting it there reaches
# every call, including through a bound ``MyFunction.apply`` taken before the capture.
@classmethod  # type: ignore[misc]
def _apply(cls, *args, **kwargs):
    if _APPLY.capturing and current_context() is not None:
        return call_function(cls, args, kwargs)
    return FunctionBase.__dict__["apply"].__get__(None, cls)(*args, **kwargs)


_APPLY = CapturePatch(SingleLevelFunction, "apply", _apply)


def intercept_apply():
    """While this thread captures, its ``Function.apply`` calls come here (see module doc)."""
    return _APPLY.held()
