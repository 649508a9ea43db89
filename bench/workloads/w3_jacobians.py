"""W3: jacobians of ``tanh(W x + b)`` with jacrev, jacfwd and batched ``vmap(jacrev)``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import torch
import torch.nn.functional as F

import torchjax
from bench.harness import JAX, TORCH_COMPILE, TORCH_FUNC, TORCHJAX, Case, torch_compile_not_run
from torchjax._src.transforms.autodiff import switches_mode


def predict(weight, bias, x):
    return F.linear(x, weight, bias).tanh()


def jax_predict(weight, bias, x):
    return jnp.tanh(x @ weight.T + bias)


# Weights scaled as nn.Linear initialises them: with plain randn, tanh saturates and the
# derivatives are mostly zeros, which says little about numerical agreement.
def _case(id_: str, title: str, mode: str, d_in: int, d_out: int, batch: int | None, quick: bool) -> Case:
    weight, bias = torch.randn(d_out, d_in) / d_in**0.5, torch.randn(d_out)
    x = torch.randn(d_in) if batch is None else torch.randn(batch, d_in)
    torch_jac, torchjax_jac, jax_jac = {
        "rev": (torch.func.jacrev, torchjax.func.jacrev, jax.jacrev),
        "fwd": (torch.func.jacfwd, torchjax.func.jacfwd, jax.jacfwd),
    }[mode]
    reference, product = torch_jac(predict, argnums=2), torchjax_jac(predict, argnums=2)
    by_hand = jax_jac(jax_predict, 2)
    if batch is not None:
        reference = torch.func.vmap(reference, in_dims=(None, None, 0))
        product = torchjax.func.vmap(product, in_dims=(None, None, 0))
        by_hand = jax.vmap(by_hand, in_axes=(None, None, 0))
    by_hand = jax.jit(by_hand)
    compiled = torch.compile(reference)
    jw, jb, jx = torchjax.to_jax_array((weight, bias, x))
    passes = (d_out, d_in) if mode == "rev" else (d_in, d_out)
    note = None
    if batch is None and switches_mode(mode == "rev", d_in, d_out):  # docs/migration.md
        other = "forward" if mode == "rev" else "reverse"
        note = f"torchjax runs {other} mode: {passes[1]} passes, not {passes[0]}; jax and torch.func run the mode named"
    return Case(
        id_,
        title,
        {
            TORCH_FUNC: lambda: reference(weight, bias, x),
            TORCHJAX: lambda: product(weight, bias, x),
            JAX: lambda: by_hand(jw, jb, jx),
            TORCH_COMPILE: lambda: compiled(weight, bias, x),
        },
        skipped=torch_compile_not_run(quick),
        note=(lambda _outputs: note) if note else None,
    )


def cases(quick: bool) -> list[Case]:
    wide, batch = (64, 4) if quick else (2048, 64)
    return [
        _case("W3a", f"jacrev, Din 32, Dout {wide}", "rev", 32, wide, None, quick),
        _case("W3b", f"jacfwd, Din {wide}, Dout 32", "fwd", wide, 32, None, quick),
        _case("W3c", f"vmap(jacrev), B {batch}, 31→33", "rev", 31, 33, batch, quick),
    ]
