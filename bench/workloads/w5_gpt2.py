"""W5: a small GPT-2 (transformers, random weights): gradient of the LM loss w.r.t. all
parameters, and forward latency."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import torch
import torch.nn.functional as F

import torchjax
from bench import gpt2_jax
from bench.harness import JAX, TORCH_COMPILE, TORCH_FUNC, TORCHJAX, Case, torch_compile_not_run


def gpt2(n_positions: int) -> torch.nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        n_layer=2, n_embd=128, n_head=4, vocab_size=1000, n_positions=n_positions,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0,
    )  # fmt: skip
    return GPT2LMHeadModel(config).eval()


def cases(quick: bool) -> list[Case]:
    batch, seq = (2, 8) if quick else (8, 64)
    model = gpt2(n_positions=64)
    params = {k: v.detach() for k, v in model.named_parameters()}
    ids = torch.randint(model.config.vocab_size, (batch, seq))
    vocab = model.config.vocab_size

    def forward(params, ids):
        return torch.func.functional_call(model, params, (ids,)).logits

    def loss(params, ids):
        logits = forward(params, ids)
        return F.cross_entropy(logits[:, :-1].reshape(-1, vocab), ids[:, 1:].reshape(-1))

    config = dict(n_layer=model.config.n_layer, n_head=model.config.n_head, eps=model.config.layer_norm_epsilon)
    jparams = torchjax.to_jax_array(params)
    jids = jnp.asarray(ids.numpy(), jnp.int32)  # what a JAX user passes with x64 off
    jax_grad = jax.jit(jax.grad(functools.partial(gpt2_jax.lm_loss, **config)))
    jax_forward = jax.jit(functools.partial(gpt2_jax.logits, **config))
    torch_grad, torchjax_grad = torch.func.grad(loss), torchjax.func.grad(loss)
    torchjax_forward = torchjax.jit(forward)
    compiled_grad, compiled_forward = torch.compile(torch.func.grad(loss)), torch.compile(forward)

    def torch_forward(forward=forward):
        with torch.no_grad():
            return forward(params, ids)

    return [
        Case(
            "W5a",
            f"GPT-2 grad of LM loss, batch {batch}, seq {seq}",
            {
                TORCH_FUNC: lambda: torch_grad(params, ids),
                TORCHJAX: lambda: torchjax_grad(params, ids),
                JAX: lambda: jax_grad(jparams, jids),
                TORCH_COMPILE: lambda: compiled_grad(params, ids),
            },
            skipped=torch_compile_not_run(quick),
        ),
        Case(
            "W5b",
            f"GPT-2 forward, batch {batch}, seq {seq}",
            {
                TORCH_FUNC: torch_forward,
                TORCHJAX: lambda: torchjax_forward(params, ids),
                JAX: lambda: jax_forward(jparams, jids),
                TORCH_COMPILE: lambda: torch_forward(compiled_forward),
            },
            skipped=torch_compile_not_run(quick),
        ),
    ]
