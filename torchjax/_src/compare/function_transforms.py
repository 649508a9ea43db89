"""``vjp``, ``jvp``, ``jacrev``, ``jacfwd``, ``hessian`` and ``vmap(grad)``: the
``torch.func`` transform of the function against the ``torchjax.func`` one, compared
on their final results.

The function is differentiated with respect to its floating-point positional
arguments (its parameters stay fixed), except ``vmap(grad)`` of a module, which gives
per-sample gradients of the parameters, as training code computes them. A non-scalar
output is made scalar as ``sum(out * cotangent)`` with a fixed random cotangent.
"""

from __future__ import annotations

from typing import Any

import torch

from ..transforms import grad as _grad
from ..transforms import jacobian as _jacobian
from ..transforms import vjp as _vjp
from ..transforms import vmap as _vmap
from .metrics import Entry
from .modules import cotangents, reference_run, scalarize, state_of, tree_entries
from .target import Target, is_float, tensor_leaves, to_double

FUNCTION_TRANSFORMS = ("vjp", "jvp", "jacrev", "jacfwd", "hessian", "vmap(grad)")


class _Torchjax:
    vjp = staticmethod(_vjp.vjp)
    jvp = staticmethod(_vjp.jvp)
    jacrev = staticmethod(_jacobian.jacrev)
    jacfwd = staticmethod(_jacobian.jacfwd)
    hessian = staticmethod(_jacobian.hessian)
    grad = staticmethod(_grad.grad)
    vmap = staticmethod(_vmap.vmap)


def _run(name: str, F, target: Target, state: dict, args: tuple, kwargs: dict, cots, tangents, sample_cots) -> Any:
    positions = [i for i, a in enumerate(args) if is_float(a)]
    if not positions and name != "vmap(grad)":
        raise ValueError(f"compare(transforms=({name!r},)): the function has no floating-point positional argument")
    primals = tuple(args[i] for i in positions)

    def call(xs, st=state):
        a = list(args)
        for i, x in zip(positions, xs):
            a[i] = x
        return torch.func.functional_call(target, st, tuple(a), kwargs, strict=False)

    def outs(*xs):
        return tuple(t for t in tensor_leaves(call(xs)) if is_float(t))

    def scalar(*xs):
        return scalarize(call(xs), cots)

    argnums = tuple(range(len(primals)))
    if name == "vjp":
        _, pullback = F.vjp(outs, *primals)
        return pullback(tuple(cots))
    if name == "jvp":
        return F.jvp(outs, primals, tangents)
    if name == "jacrev":
        return F.jacrev(outs, argnums=argnums)(*primals)
    if name == "jacfwd":
        return F.jacfwd(outs, argnums=argnums)(*primals)
    if name == "hessian":
        return F.hessian(scalar, argnums=argnums)(*primals)
    if name == "vmap(grad)":
        if target.is_module:
            params = {k: state[k] for k, _ in target.named_parameters()}
            buffers = {k: state[k] for k, _ in target.named_buffers()}

            def one(p, *sample):
                batched = [s.unsqueeze(0) for s in sample]
                a = list(args)
                for i, x in zip(positions, batched):
                    a[i] = x
                out = torch.func.functional_call(target, {**p, **buffers}, tuple(a), kwargs, strict=False)
                return scalarize(out, sample_cots)

            in_dims = (None, *([0] * len(positions)))
            return F.vmap(F.grad(one), in_dims=in_dims)(params, *primals)

        def one_fn(*sample):
            a = list(args)
            for i, x in zip(positions, sample):
                a[i] = x
            return scalarize(torch.func.functional_call(target, state, tuple(a), kwargs, strict=False), sample_cots)

        return F.vmap(F.grad(one_fn, argnums=argnums))(*primals)
    raise ValueError(
        f"compare: unknown transform {name!r}; expected one of forward, grad, {', '.join(FUNCTION_TRANSFORMS)}"
    )


def transform_entries(name: str, target: Target, args, kwargs, out, *, reference: bool, rtol, atol) -> list[Entry]:
    """Entries for the final result of transform ``name``."""
    state = state_of(target)
    cots = cotangents(out)
    g = torch.Generator().manual_seed(1)
    tangents = tuple(torch.randn(a.shape, generator=g, dtype=torch.float64).to(a.dtype) for a in args if is_float(a))
    sample_cots = None
    if name == "vmap(grad)":
        positions = [i for i, a in enumerate(args) if is_float(a)]
        a = list(args)
        for i in positions:
            a[i] = args[i][0:1] if target.is_module else args[i][0]
        with torch.no_grad():
            sample_cots = cotangents(torch.func.functional_call(target, state, tuple(a), kwargs, strict=False))
    expected = _run(name, torch.func, target, state, args, kwargs, cots, tangents, sample_cots)
    actual = _run(name, _Torchjax, target, state, args, kwargs, cots, tangents, sample_cots)
    ref = None
    if reference:
        with reference_run() as done:
            done(
                _run(
                    name,
                    torch.func,
                    target,
                    state_of(target, lambda v: to_double(v.detach())),
                    to_double(args),
                    to_double(kwargs),
                    [c.double() for c in cots],
                    tuple(t.double() for t in tangents),
                    [c.double() for c in sample_cots] if sample_cots is not None else None,
                )
            )
        ref = done.value
    return tree_entries(name, name, target.fn_name, expected, actual, ref, rtol=rtol, atol=atol)
