"""GPT-2 written by hand in JAX, reading the parameters of a transformers ``GPT2LMHeadModel``.

Parameters are the model's ``named_parameters()`` under their torch names; the LM head
is tied to the token embedding, as in transformers. ``Conv1D`` weights are stored
(in, out), so projections are ``x @ W + b``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def layer_norm(x, weight, bias, eps: float):
    mean = x.mean(-1, keepdims=True)
    var = jnp.square(x - mean).mean(-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + eps) * weight + bias


def attention(p: dict, prefix: str, x, n_head: int):
    batch, seq, width = x.shape
    q, k, v = jnp.split(x @ p[prefix + "c_attn.weight"] + p[prefix + "c_attn.bias"], 3, axis=-1)
    heads = lambda t: t.reshape(batch, seq, n_head, width // n_head).transpose(0, 2, 1, 3)
    q, k, v = heads(q), heads(k), heads(v)
    scores = q @ k.swapaxes(-1, -2) / math.sqrt(width // n_head)
    causal = jnp.tril(jnp.ones((seq, seq), bool))
    scores = jnp.where(causal, scores, jnp.finfo(scores.dtype).min)
    out = (jax.nn.softmax(scores, axis=-1) @ v).transpose(0, 2, 1, 3).reshape(batch, seq, width)
    return out @ p[prefix + "c_proj.weight"] + p[prefix + "c_proj.bias"]


def mlp(p: dict, prefix: str, x):
    h = jax.nn.gelu(x @ p[prefix + "c_fc.weight"] + p[prefix + "c_fc.bias"], approximate=True)  # gelu_new
    return h @ p[prefix + "c_proj.weight"] + p[prefix + "c_proj.bias"]


def logits(p: dict, ids, *, n_layer: int, n_head: int, eps: float = 1e-5):
    wte = p["transformer.wte.weight"]
    x = wte[ids] + p["transformer.wpe.weight"][: ids.shape[1]]
    for i in range(n_layer):
        pre = f"transformer.h.{i}."
        x = x + attention(p, pre + "attn.", layer_norm(x, p[pre + "ln_1.weight"], p[pre + "ln_1.bias"], eps), n_head)
        x = x + mlp(p, pre + "mlp.", layer_norm(x, p[pre + "ln_2.weight"], p[pre + "ln_2.bias"], eps))
    x = layer_norm(x, p["transformer.ln_f.weight"], p["transformer.ln_f.bias"], eps)
    return x @ wte.T


def lm_loss(p: dict, ids, **config):
    """Mean next-token cross entropy, as ``F.cross_entropy(logits[:, :-1], ids[:, 1:])``."""
    logp = jax.nn.log_softmax(logits(p, ids, **config)[:, :-1], axis=-1)
    return -jnp.take_along_axis(logp, ids[:, 1:, None], axis=-1).mean()
