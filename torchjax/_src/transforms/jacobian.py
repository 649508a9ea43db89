"""jacrev, jacfwd and hessian, executed by ``jax.jacrev``/``jax.jacfwd`` in the mode that needs fewer passes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import torch

from ..capture import TraceResult
from .autodiff import _check_outputs, _check_real, _Differentiating, cheaper_jacobian
from .base import Settings, check_argnums, fn_name
from .body import Args, Body, check_aux
from .vmap import RANDOM_ERROR


@dataclasses.dataclass(frozen=True, eq=False)
class JacobianSettings(Settings):
    argnums: int | tuple[int, ...] = 0
    has_aux: bool = False
    chunk_size: int | None = None  # jacrev's; XLA computes all rows in one program either way
    randomness: str = "error"  # jacfwd's


class _Jacobian(_Differentiating):
    jax_mode: Callable  # jax.jacrev or jax.jacfwd: the mode asked for
    outputs: str  # what the function must return (see _check_outputs)
    torch_func: Callable
    settings: JacobianSettings

    def __init__(self, fn: Callable, settings: JacobianSettings):
        super().__init__(fn, settings)
        if settings.chunk_size is not None and settings.chunk_size <= 0:
            raise ValueError(f"{self.api}: `chunk_size` should be greater than 0.")
        if settings.randomness not in ("error", "different", "same"):
            raise RuntimeError(
                f"Only allowed values for randomness are 'error', 'different', or 'same'. Got {settings.randomness}"
            )

    def call_repr(self):
        return f"{self.api}({fn_name(self.fn)}, argnums={self.settings.argnums})(<inputs>)"

    def torch_func_equivalent(self):
        return self.torch_func(self.fn, argnums=self.settings.argnums, has_aux=self.settings.has_aux)

    def plan(self, args, kwargs):
        call = self.call_repr()
        _check_real(call, args, "inputs")
        argnums = check_argnums(call, self.settings.argnums, len(args))
        self.check_inputs(call, [args[i] for i in argnums])
        return argnums

    def impl(self, ctx, plan, args, kwargs):
        settings, call, outputs = self.settings, self.call_repr(), self.outputs

        def check(out, aux):
            check_aux(call, aux, settings.has_aux)
            _check_outputs(call, out, outputs)
            _check_real(call, out, "outputs")

        # torch's jacfwd is a vmap of jvp: a random op raises unless randomness says otherwise
        rng_error = f"{call}: {RANDOM_ERROR}" if self.forward and settings.randomness == "error" else None
        diff = Args(args, plan)
        body = Body(self.fn, ctx, diff, kwargs, call=call, has_aux=settings.has_aux, check=check, rng_error=rng_error)
        # randomness='different' asks for a fresh draw per forward-mode pass: that mode stays
        may_switch = settings.randomness != "different"
        jac, traced = cheaper_jacobian(self.jax_mode, body, diff.flat(), may_switch=may_switch)
        per_output = []
        for per_arg in jac:  # one entry per output leaf, each a tuple over argnums
            trees = diff.unpack(per_arg)
            per_output.append(trees[0] if isinstance(settings.argnums, int) else trees)
        result = traced.output(per_output)
        return TraceResult((result, traced.aux_tree()) if settings.has_aux else result, traced.side.apply(ctx))


class JacRev(_Jacobian):
    api = "jacrev"
    enables_grad = True
    jax_mode = staticmethod(jax.jacrev)
    forward = False
    outputs = "inexact"
    torch_func = staticmethod(torch.func.jacrev)


class JacFwd(_Jacobian):
    api = "jacfwd"
    jax_mode = staticmethod(jax.jacfwd)
    forward = True
    outputs = "tensors"
    torch_func = staticmethod(torch.func.jacfwd)


def jacrev(func: Callable, argnums: int | tuple[int, ...] = 0, *, has_aux: bool = False,
           chunk_size: int | None = None, _preallocate_and_copy: bool = False) -> Callable:  # fmt: skip
    """``torch.func.jacrev``: the Jacobian by reverse mode.

    ``chunk_size`` is validated as torch does; XLA computes all rows in one batched
    program, so it does not change the result. ``_preallocate_and_copy`` (torch.func's
    memory layout of chunks) is accepted and has nothing to change.

    Example:
        >>> import torch, torchjax.func as func
        >>> func.jacrev(torch.sin)(torch.zeros(2))
        tensor([[1., 0.],
                [0., 1.]])
    """
    return JacRev(func, JacobianSettings(argnums, has_aux, chunk_size=chunk_size))


def jacfwd(func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False, *,
           randomness: str = "error") -> Callable:  # fmt: skip
    """``torch.func.jacfwd``: the Jacobian by forward mode.

    Example:
        >>> import torch, torchjax.func as func
        >>> func.jacfwd(lambda x: x ** 2)(torch.tensor([1.0, 2.0]))
        tensor([[2., 0.],
                [0., 4.]])
    """
    return JacFwd(func, JacobianSettings(argnums, has_aux, randomness=randomness))


def hessian(func: Callable, argnums: int | tuple[int, ...] = 0) -> Callable:
    """``torch.func.hessian``: ``jacfwd(jacrev(func, argnums), argnums)``.

    Example:
        >>> import torch, torchjax.func as func
        >>> func.hessian(lambda x: (x ** 3).sum())(torch.tensor([1.0, 2.0]))
        tensor([[ 6.,  0.],
                [ 0., 12.]])
    """
    return jacfwd(jacrev(func, argnums), argnums)
