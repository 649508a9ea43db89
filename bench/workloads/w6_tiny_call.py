"""W6: per-call overhead, ``grad(lambda x: (x ** 2).sum())`` on 16 floats."""

from __future__ import annotations

import jax
import torch

import torchjax
from bench.harness import JAX, TORCH_COMPILE, TORCH_FUNC, TORCHJAX, Case


def square_sum(x):
    return (x**2).sum()


def cases(quick: bool) -> list[Case]:
    x = torch.randn(16)
    jx = torchjax.to_jax_array(x)
    reference, product = torch.func.grad(square_sum), torchjax.func.grad(square_sum)
    by_hand = jax.jit(jax.grad(square_sum))  # jax arrays have ** and .sum() too
    compiled = torch.compile(torch.func.grad(square_sum))  # a few seconds to compile: run in quick mode too
    return [
        Case(
            "W6",
            "tiny grad, 16 floats",
            {
                TORCH_FUNC: lambda: reference(x),
                TORCHJAX: lambda: product(x),
                JAX: lambda: by_hand(jx),
                TORCH_COMPILE: lambda: compiled(x),
            },
        )
    ]
