"""W2: model ensembling, ``stack_module_state`` + ``vmap(functional_call)`` (torch.func tutorial)."""

from __future__ import annotations

import copy

import jax
import torch

import torchjax
from bench.harness import JAX, TORCH_COMPILE, TORCH_FUNC, TORCHJAX, Case, torch_compile_not_run


def mlp() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)
    )


def jax_mlp(p, x):
    x = jax.nn.relu(x @ p["0.weight"].T + p["0.bias"])
    x = jax.nn.relu(x @ p["2.weight"].T + p["2.bias"])
    return x @ p["4.weight"].T + p["4.bias"]


def cases(quick: bool) -> list[Case]:
    num_models, batch = (3, 4) if quick else (10, 64)
    models = [mlp() for _ in range(num_models)]
    params, buffers = torch.func.stack_module_state(models)
    params = {k: v.detach() for k, v in params.items()}
    base = copy.deepcopy(models[0]).to("meta")
    minibatch = torch.randn(batch, 784)

    def fmodel(params, buffers, x):
        return torch.func.functional_call(base, (params, buffers), (x,))

    reference = torch.func.vmap(fmodel, in_dims=(0, 0, None))
    product = torchjax.func.vmap(fmodel, in_dims=(0, 0, None))
    compiled = torch.compile(torch.func.vmap(fmodel, in_dims=(0, 0, None)))
    by_hand = jax.jit(jax.vmap(jax_mlp, in_axes=(0, None)))
    jparams, jbatch = torchjax.to_jax_array((params, minibatch))
    return [
        Case(
            "W2",
            f"ensemble of {num_models} MLPs, batch {batch}",
            {
                TORCH_FUNC: lambda: reference(params, buffers, minibatch),
                TORCHJAX: lambda: product(params, buffers, minibatch),
                JAX: lambda: by_hand(jparams, jbatch),
                TORCH_COMPILE: lambda: compiled(params, buffers, minibatch),
            },
            skipped=torch_compile_not_run(quick),
        )
    ]
