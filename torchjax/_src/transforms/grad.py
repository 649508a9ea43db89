"""grad and grad_and_value, executed by ``jax.grad``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import torch

from ..capture import Context, TraceResult, is_array
from .autodiff import _Differentiating
from .base import Settings, check_argnums, fn_name
from .body import Args, Body, check_aux

_PLAIN = (torch.Tensor, torch.nn.Parameter)


@dataclasses.dataclass(frozen=True, eq=False)
class GradSettings(Settings):
    argnums: int | tuple[int, ...] = 0
    has_aux: bool = False


class GradAndValue(_Differentiating):
    api = "grad_and_value"
    enables_grad = True
    torch_func = staticmethod(torch.func.grad_and_value)
    settings: GradSettings

    def call_repr(self):
        return f"{self.api}({fn_name(self.fn)}, argnums={self.settings.argnums})(<inputs>)"

    def torch_func_equivalent(self):
        return self.torch_func(self.fn, argnums=self.settings.argnums, has_aux=self.settings.has_aux)

    def plan(self, args, kwargs):
        n = self.settings.argnums
        if type(n) is int and -len(args) <= n < len(args) and type(args[n]) in _PLAIN:
            if args[n].is_floating_point() or args[n].is_complex():  # the common case, checked cheaply
                return (n % len(args),)
        call = self.call_repr()
        argnums = check_argnums(call, n, len(args))
        self.check_inputs(call, [args[i] for i in argnums])
        return argnums

    def impl(self, ctx: Context, plan, args, kwargs) -> TraceResult:
        call = self.call_repr()
        has_aux = self.settings.has_aux

        def check(out, aux):
            if not is_array(out):
                raise RuntimeError(f"{call}: Expected f(*args) to return a Tensor, got {type(out)}")
            if out.ndim != 0:
                raise RuntimeError(
                    f"{call}: Expected f(*args) to return a scalar Tensor, got tensor with {out.ndim} "
                    "dims. Maybe you wanted to use the vjp or jacrev APIs instead?"
                )
            check_aux(call, aux, has_aux)  # after the output, as torch.func checks it

        diff = Args(args, plan)
        body = Body(self.fn, ctx, diff, kwargs, call=call, has_aux=has_aux, check=check)

        def scalar(*flat):
            (value,), traced = body(*flat)
            # integer outputs have zero gradient, as in torch
            out = value if jnp.issubdtype(value.dtype, jnp.inexact) else value.astype(jnp.float32)
            return out, (value, traced)

        grads, (value, traced) = jax.grad(scalar, argnums=tuple(range(len(plan))), has_aux=True)(*diff.flat())
        grads = diff.unpack(grads)
        if isinstance(self.settings.argnums, int):
            grads = grads[0]
        result = self.assemble(grads, value, traced.aux_tree())
        return TraceResult(result, traced.side.apply(ctx))

    def assemble(self, grads, value, aux):
        return (grads, (value, aux)) if self.settings.has_aux else (grads, value)


class Grad(GradAndValue):
    api = "grad"
    torch_func = staticmethod(torch.func.grad)

    def assemble(self, grads, value, aux):
        return (grads, aux) if self.settings.has_aux else grads


def grad(func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """``torch.func.grad``, executed by JAX: the gradient of a scalar function.

    Example:
        >>> import torch, torchjax.func as func
        >>> func.grad(lambda x: (x ** 2).sum())(torch.tensor([1.0, 2.0]))
        tensor([2., 4.])
    """
    return Grad(func, GradSettings(argnums, has_aux))


def grad_and_value(func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """``torch.func.grad_and_value``: the gradient and the value, in one JAX pass.

    Example:
        >>> import torch, torchjax.func as func
        >>> g, v = func.grad_and_value(lambda x: (x ** 2).sum())(torch.tensor([1.0, 2.0]))
        >>> g, v
        (tensor([2., 4.]), tensor(5.))
    """
    return GradAndValue(func, GradSettings(argnums, has_aux))
