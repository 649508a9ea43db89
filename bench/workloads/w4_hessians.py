"""W4: ``hessian`` of ``sum(tanh(W x + b))``, and a hessian-vector product as ``jvp(grad(f))``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import torch
import torch.nn.functional as F

import torchjax
from bench.harness import JAX, TORCH_COMPILE, TORCH_FUNC, TORCHJAX, Case, torch_compile_not_run


def energy(weight, bias, x):
    return F.linear(x, weight, bias).tanh().sum()


def jax_energy(weight, bias, x):
    return jnp.tanh(x @ weight.T + bias).sum()


# Weights scaled as nn.Linear initialises them, so that tanh does not saturate.
def _inputs(d_in: int, d_out: int = 32):
    tensors = torch.randn(d_out, d_in) / d_in**0.5, torch.randn(d_out), torch.randn(d_in)
    return tensors, torchjax.to_jax_array(tensors)


def hessian_case(d_in: int, quick: bool) -> Case:
    (w, b, x), (jw, jb, jx) = _inputs(d_in)
    reference, product = torch.func.hessian(energy, argnums=2), torchjax.func.hessian(energy, argnums=2)
    by_hand = jax.jit(jax.hessian(jax_energy, argnums=2))
    compiled = torch.compile(torch.func.hessian(energy, argnums=2))
    return Case(
        "W4a",
        f"hessian, Din {d_in}, Dout 32",
        {
            TORCH_FUNC: lambda: reference(w, b, x),
            TORCHJAX: lambda: product(w, b, x),
            JAX: lambda: by_hand(jw, jb, jx),
            TORCH_COMPILE: lambda: compiled(w, b, x),
        },
        skipped=torch_compile_not_run(quick),
    )


def hvp_case(d_in: int, quick: bool) -> Case:
    (w, b, x), (jw, jb, jx) = _inputs(d_in)
    v = torch.randn(d_in)
    jv = torchjax.to_jax_array(v)
    f = lambda x: energy(w, b, x)
    by_hand = jax.jit(lambda w, b, x, v: jax.jvp(jax.grad(lambda x: jax_energy(w, b, x)), (x,), (v,))[1])
    compiled = torch.compile(lambda x, v: torch.func.jvp(torch.func.grad(f), (x,), (v,))[1])
    return Case(
        "W4b",
        f"hvp = jvp(grad(f)), Din {d_in}, Dout 32",
        {
            TORCH_FUNC: lambda: torch.func.jvp(torch.func.grad(f), (x,), (v,))[1],
            TORCHJAX: lambda: torchjax.func.jvp(torchjax.func.grad(f), (x,), (v,))[1],
            JAX: lambda: by_hand(jw, jb, jx, jv),
            TORCH_COMPILE: lambda: compiled(x, v),
        },
        skipped=torch_compile_not_run(quick),
    )


def cases(quick: bool) -> list[Case]:
    return [hessian_case(16 if quick else 512, quick), hvp_case(64 if quick else 2048, quick)]
