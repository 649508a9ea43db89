"""vjp, jvp and linearize, executed by ``jax.vjp`` and ``jax.jvp``; the function a vjp returns."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import torch
from torch.utils import _pytree as pytree

from .. import caches, dtypes
from ..capture import TraceResult, is_array
from ..crossing import to_jax_array, to_torch
from ..tensor import current_context
from .autodiff import _check_outputs, _Differentiating
from .base import _LRU, Settings, fn_name, unwrap_tree, wrap_tree
from .body import Args, Body, Packed, check_aux


@dataclasses.dataclass(frozen=True, eq=False)
class AuxSettings(Settings):
    has_aux: bool = False


def _checks(call: str, has_aux: bool, outputs: str) -> Callable:
    """vjp's and jvp's checks of the function's output and aux, in torch.func's order."""

    def check(out, aux):
        check_aux(call, aux, has_aux)
        _check_outputs(call, out, outputs)

    return check


# --------------------------------------------------------------------------- vjp


@dataclasses.dataclass(frozen=True, eq=False)
class _Pullback:
    """What a vjp's pullback is besides its residuals; a static output of the compiled program."""

    treedef: Any  # the pullback's JAX tree structure; its leaves are the residuals
    out_pack: Packed
    primal_packs: tuple[Packed, ...]
    out_avals: tuple[tuple[tuple[int, ...], Any], ...]  # (shape, dtype) of each output array


class _ResidualFn:
    """A function of cotangents closed over the residuals of a ``vjp``.

    Called at top level, it runs a cached ``jax.jit`` of the pullback on the residuals
    (torch tensors, zero-copy views of JAX buffers). Called inside a capture
    (``vmap(vjp_fn)``, ``grad`` of it), the pullback joins the enclosing trace: the
    residuals enter as values of that trace (a torch tensor as a captured input, read
    afresh), the cotangents as they come (batched tracers under vmap).
    """

    _jitted = _LRU(256)  # the jitted pullbacks, one per traced function

    def __init__(self, pullback: _Pullback, residuals: list):
        self.pullback = pullback
        self.residuals = residuals
        self.out_avals = pullback.out_avals

    def check(self, cts) -> None:
        _, spec = pytree.tree_flatten(cts)
        out_spec = self.pullback.out_pack.spec
        if spec != out_spec:
            raise RuntimeError(
                f"vjp: Expected pytree structure of cotangents to be the same as pytree "
                f"structure of outputs to the function. cotangents: {spec}, primal output: {out_spec}"
            )

    def _conform(self, cts: list) -> list:
        """Shapes must match the outputs; dtypes are cast to the outputs' as torch does;
        ``None`` stands for ones for a scalar output, as in ``torch.autograd.grad``."""
        fixed = []
        for i, (ct, (shape, dtype)) in enumerate(zip(cts, self.out_avals)):
            if ct is None:
                if shape != ():
                    raise RuntimeError(
                        f"vjp: grad can be implicitly created only for scalar outputs; "
                        f"output[{i}] has a shape of {torch.Size(shape)}, pass a cotangent for it"
                    )
                fixed.append(jnp.ones((), dtype))
                continue
            if not (isinstance(ct, torch.Tensor) or is_array(ct)):
                raise TypeError(f"vjp: gradients can be either Tensors or None, but got {type(ct).__name__}")
            if tuple(ct.shape) != shape:
                raise RuntimeError(
                    f"vjp: Mismatch in shape: grad_output[{i}] has a shape of "
                    f"{torch.Size(ct.shape)} and output[{i}] has a shape of {torch.Size(shape)}."
                )
            fixed.append(ct.to(dtypes.to_torch_dtype(dtype)) if isinstance(ct, torch.Tensor) else ct.astype(dtype))
        return fixed

    def apply(self, cts) -> tuple:
        cts = pytree.tree_leaves(cts)
        treedef, packs = self.pullback.treedef, self.pullback.primal_packs
        if current_context() is not None:
            fn = jax.tree_util.tree_unflatten(treedef, unwrap_tree(self.residuals))
            grads = fn(self._conform(unwrap_tree(cts)))
            return wrap_tree(tuple(p.unpack(gr) for p, gr in zip(packs, grads)))
        jitted = _ResidualFn._jitted.get_or_create(
            treedef, lambda: jax.jit(lambda res, ct: jax.tree_util.tree_unflatten(treedef, res)(ct))
        )
        with jax.enable_x64(True):
            grads = jitted(to_jax_array(self.residuals), to_jax_array(self._conform(cts)))
        return to_torch(tuple(p.unpack(list(gr)) for p, gr in zip(packs, grads)))


caches.register("transforms.vjp_pullbacks", _ResidualFn._jitted.clear)


class Vjp(_Differentiating):
    api = "vjp"
    enables_grad = True
    settings: AuxSettings

    def call_repr(self):
        return f"vjp({fn_name(self.fn)}, *primals)"

    def torch_func_equivalent(self):
        return lambda *primals: torch.func.vjp(self.fn, *primals, has_aux=self.settings.has_aux)

    def plan(self, args, kwargs):
        self.check_inputs(self.call_repr(), args)
        return len(args)

    def impl(self, ctx, plan, args, kwargs):
        call, has_aux = self.call_repr(), self.settings.has_aux
        primals = Args(args, tuple(range(len(args))))
        body = Body(self.fn, ctx, primals, kwargs, call=call, has_aux=has_aux, check=_checks(call, has_aux, "inexact"))
        out, pullback, traced = jax.vjp(body, *primals.flat(), has_aux=True)
        residuals, treedef = jax.tree_util.tree_flatten(pullback)
        avals = tuple((tuple(x.shape), x.dtype) for x in out)
        meta = _Pullback(treedef, traced.out_pack, tuple(primals.packs), avals)
        return TraceResult((traced.output(out), residuals, traced.aux_tree(), meta), traced.side.apply(ctx))

    def finish(self, out, plan, to_torch_values):
        primal_out, residuals, aux, meta = out
        rfn = _ResidualFn(meta, residuals)

        def vjp_fn(cotangents, *, retain_graph=None, create_graph=None):
            rfn.check(cotangents)
            return rfn.apply(cotangents)

        return (primal_out, vjp_fn, aux) if self.settings.has_aux else (primal_out, vjp_fn)


def vjp(func: Callable, *primals: Any, has_aux: bool = False):
    """``torch.func.vjp``: the output and a function mapping cotangents to input gradients.

    Example:
        >>> import torch, torchjax.func as func
        >>> out, vjp_fn = func.vjp(torch.sin, torch.zeros(2))
        >>> vjp_fn(torch.ones(2))
        (tensor([1., 1.]),)
    """
    return Vjp(func, AuxSettings(has_aux))(*primals)


# --------------------------------------------------------------------------- jvp, linearize


class Jvp(_Differentiating):
    api = "jvp"
    outputs = "tensors"  # what the function must return (see _check_outputs)
    settings: AuxSettings

    def call_repr(self):
        return f"jvp({fn_name(self.fn)}, primals, tangents)"

    def torch_func_equivalent(self):
        return lambda primals, tangents: torch.func.jvp(self.fn, primals, tangents, has_aux=self.settings.has_aux)

    def plan(self, args, kwargs):
        """torch.func's checks, in its order; torch.func names the call ``jvp(f, primals, tangents)``."""
        call = self.call_repr()
        primals, tangents = args
        if not isinstance(primals, tuple):
            raise RuntimeError(f"{call}: Expected primals to be a tuple. E.g. it should be valid to call f(*primals).")
        p_leaves, p_spec = pytree.tree_flatten(primals)
        t_leaves, t_spec = pytree.tree_flatten(tangents)
        if p_spec != t_spec:
            raise RuntimeError(
                f"{call}: Expected primals and tangents to have the same python structure. For "
                f"example, if primals is a tuple of 3 tensors, tangents also must be. Got primals "
                f"with structure {p_spec} and tangents with structure {t_spec}"
            )
        for leaves, name in ((p_leaves, "primals"), (t_leaves, "tangents")):
            if not leaves:
                raise RuntimeError(f"{call}: Expected {name} to contain at least one Tensor.")
            for leaf in leaves:
                if not isinstance(leaf, torch.Tensor):
                    raise RuntimeError(
                        f"{call}: Expected {name} to only contain Tensors, got {type(leaf)}. Pass "
                        "non-tensor arguments through a closure or functools.partial."
                    )
        for p, t in zip(p_leaves, t_leaves):
            for x, name in ((p, "primal"), (t, "tangent")):
                if not (x.is_floating_point() or x.is_complex()):
                    raise ValueError(f"{call}: Expected {name} to be floating point or complex, but got: {x.dtype}")
            if p.shape != t.shape:
                raise RuntimeError(
                    f"{call}: Trying to set a forward gradient that has a different size than that of "
                    f"the original Tensor, this is not supported. Tensor is of size {list(p.shape)} "
                    f"while the given forward gradient is of size {list(t.shape)}."
                )
        return ()

    def impl(self, ctx, plan, args, kwargs):
        primals, tangents = args
        call, has_aux = self.call_repr(), self.settings.has_aux
        diff = Args(primals, tuple(range(len(primals))))
        body = Body(self.fn, ctx, diff, kwargs, call=call, has_aux=has_aux, check=_checks(call, has_aux, self.outputs))
        flat_p = diff.flat()
        flat_t = [[t.astype(x.dtype) for t, x in zip(Packed.arrays(tt), fp)] for tt, fp in zip(tangents, flat_p)]
        out, tangent_out, traced = jax.jvp(body, flat_p, flat_t, has_aux=True)
        # an integer output's tangent is JAX's float0; torch.func gives zeros of the output's dtype
        tangent_out = [jnp.zeros_like(o) if t.dtype == jax.dtypes.float0 else t for o, t in zip(out, tangent_out)]
        out, tangent_out = traced.output(out), traced.output(tangent_out)
        result = (out, tangent_out, traced.aux_tree()) if has_aux else (out, tangent_out)
        return TraceResult(result, traced.side.apply(ctx))


def jvp(func: Callable, primals: Any, tangents: Any, *, strict: bool = False, has_aux: bool = False):
    """``torch.func.jvp``: the output and the Jacobian-vector product, forward mode.

    ``strict`` is accepted, as torch.func accepts it, but not enforced: an output that does
    not depend on the inputs gets a zero tangent (torch.func with ``strict=True`` raises).

    Example:
        >>> import torch, torchjax.func as func
        >>> func.jvp(torch.sin, (torch.zeros(2),), (torch.ones(2),))
        (tensor([0., 0.]), tensor([1., 1.]))
    """
    return Jvp(func, AuxSettings(has_aux))(primals, tangents)


class _LinearizedJvp(Jvp):
    """The jvp behind ``linearize``, whose outputs may hold non-tensors (passed through), as in torch.func."""

    outputs = "any"


def linearize(func: Callable, *primals: Any):
    """``torch.func.linearize``: the output and a cached jvp function at ``primals``.

    Example:
        >>> import torch, torchjax.func as func
        >>> out, jvp_fn = func.linearize(torch.sin, torch.zeros(2))
        >>> jvp_fn(torch.ones(2))
        tensor([1., 1.])
    """
    saved = primals
    call = f"linearize({fn_name(func)}, *primals)"
    flat_primals, p_spec = pytree.tree_flatten(saved)
    for p in flat_primals:  # torch.func makes a tangent with p.new_empty for each, then a dual tensor
        if not isinstance(p, torch.Tensor):
            raise AttributeError(
                f"{call}: '{type(p).__name__}' object has no attribute 'new_empty': every primal must "
                f"be a Tensor, got {type(p)}. Pass non-tensor arguments through a closure or functools.partial."
            )
    for p in flat_primals:
        if not (p.is_floating_point() or p.is_complex()):
            raise ValueError(f"{call}: Expected primal to be floating point or complex, but got: {p.dtype}")
    jvp_t = _LinearizedJvp(func, AuxSettings(has_aux=False))
    out, _ = jvp_t(saved, tuple(pytree.tree_map(torch.zeros_like, saved)))

    def jvp_fn(*tangents):
        flat_tangents, t_spec = pytree.tree_flatten(tangents)
        if t_spec != p_spec:
            raise RuntimeError(
                f"{call}(*tangents): Expected the tangents to have the same structure as the "
                f"primals, got {t_spec} and {p_spec}"
            )
        for idx, (p, t) in enumerate(zip(flat_primals, flat_tangents)):
            for what in ("shape", "dtype"):
                if getattr(t, what) != getattr(p, what):
                    raise RuntimeError(
                        f"{call}(*tangents): tangent:{idx} with {what} {getattr(t, what)} in flattened "
                        f"pytree doesn't match the {what} {getattr(p, what)} of the corresponding primal."
                    )
        return jvp_t(saved, tangents)[1]

    return out, jvp_fn
