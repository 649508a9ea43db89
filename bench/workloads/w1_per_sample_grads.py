"""W1: per-sample gradients of a small CNN (the torch.func per-sample-grads tutorial)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import torch
import torch.nn.functional as F
from jax import lax

import torchjax
from bench.harness import JAX, TORCH_COMPILE, TORCH_FUNC, TORCHJAX, Case, torch_compile_not_run


class SimpleCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 32, 3, 1)
        self.conv2 = torch.nn.Conv2d(32, 64, 3, 1)
        self.fc1 = torch.nn.Linear(9216, 128)
        self.fc2 = torch.nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv2(F.relu(self.conv1(x))))
        x = torch.flatten(F.max_pool2d(x, 2), 1)
        return F.log_softmax(self.fc2(F.relu(self.fc1(x))), dim=1)


def _conv(x, w, b):
    y = lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=("NCHW", "OIHW", "NCHW"))
    return y + b[None, :, None, None]


def jax_loss(p, sample, target):
    x = jax.nn.relu(_conv(sample[None], p["conv1.weight"], p["conv1.bias"]))
    x = jax.nn.relu(_conv(x, p["conv2.weight"], p["conv2.bias"]))
    x = lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID").reshape(1, -1)
    x = jax.nn.relu(x @ p["fc1.weight"].T + p["fc1.bias"])
    logp = jax.nn.log_softmax(x @ p["fc2.weight"].T + p["fc2.bias"], axis=1)
    return -logp[0, target]


def cases(quick: bool) -> list[Case]:
    batch = 2 if quick else 64
    model = SimpleCNN()
    params = {k: v.detach() for k, v in model.named_parameters()}
    data, targets = torch.randn(batch, 1, 28, 28), torch.randint(10, (batch,))

    def loss(params, sample, target):
        predictions = torch.func.functional_call(model, params, (sample.unsqueeze(0),))
        return F.nll_loss(predictions, target.unsqueeze(0))

    reference = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0, 0))
    product = torchjax.func.vmap(torchjax.func.grad(loss), in_dims=(None, 0, 0))
    compiled = torch.compile(torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0, 0)))
    by_hand = jax.jit(jax.vmap(jax.grad(jax_loss), in_axes=(None, 0, 0)))
    jparams, jdata = torchjax.to_jax_array((params, data))
    jtargets = jnp.asarray(targets.numpy(), jnp.int32)  # what a JAX user passes with x64 off
    return [
        Case(
            "W1",
            f"per-sample grads, CNN, batch {batch}",
            {
                TORCH_FUNC: lambda: reference(params, data, targets),
                TORCHJAX: lambda: product(params, data, targets),
                JAX: lambda: by_hand(jparams, jdata, jtargets),
                TORCH_COMPILE: lambda: compiled(params, data, targets),
            },
            skipped=torch_compile_not_run(quick),
        )
    ]
