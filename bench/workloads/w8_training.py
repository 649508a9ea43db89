"""W8: training steps written the torch way, with AdamW.

The step is forward, ``loss.backward()``, ``opt.step()``, ``opt.zero_grad()``.

Every contender trains its own deep copy of one model, with its own optimizer, from the
same initial weights, on the same three fixed batches, cycled. Each call is one step
and returns its loss; the losses of the first three steps are compared with eager's.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import optax
import torch
import torch.nn.functional as F

import torchjax
from bench.harness import (
    EAGER,
    OPTAX,
    TORCH_COMPILE,
    TORCH_COMPILE_STEP,
    TORCHJAX_JIT_MODEL,
    TORCHJAX_JIT_STEP,
    TRAINING_CONTENDERS,
    Case,
)
from bench.workloads.w1_per_sample_grads import SimpleCNN
from bench.workloads.w2_ensembling import mlp
from bench.workloads.w5_gpt2 import gpt2

CONTENDERS = TRAINING_CONTENDERS
STEPS_CHECKED = 3  # the first steps, one per fixed batch, whose losses are compared with eager's
LR = 1e-3
# torch.optim.AdamW's defaults, so that optax runs the same update.
BETAS, EPS, WEIGHT_DECAY = (0.9, 0.999), 1e-8, 0.01


@dataclass
class Task:
    """A model, its batches ``(x, y)`` and its loss in torch and in jax.numpy (``loss(output, y)``)."""

    model: torch.nn.Module
    batches: list[tuple[torch.Tensor, torch.Tensor]]
    torch_loss: Callable[[Any, torch.Tensor], torch.Tensor]
    jax_loss: Callable[[Any, jax.Array], jax.Array]


def _jax_nll(logp: jax.Array, y: jax.Array) -> jax.Array:
    return -jnp.take_along_axis(logp, y[:, None], axis=1).mean()


def _jax_cross_entropy(logits: jax.Array, y: jax.Array) -> jax.Array:
    return _jax_nll(jax.nn.log_softmax(logits, axis=-1), y)


def _lm_loss(out: Any, ids: torch.Tensor) -> torch.Tensor:
    logits = out.logits
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))


def _jax_lm_loss(out: Any, ids: jax.Array) -> jax.Array:
    logits = out.logits
    return _jax_cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))


def _labelled(x: Callable[[], torch.Tensor], classes: int, batch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x(), torch.randint(classes, (batch,))) for _ in range(STEPS_CHECKED)]


def torch_step(model: Callable, params: list[torch.nn.Parameter], loss_fn: Callable) -> Callable:
    """The step as a torch user writes it, over ``model`` (a module, or a compiled one)."""
    opt = torch.optim.AdamW(params, lr=LR, betas=BETAS, eps=EPS, weight_decay=WEIGHT_DECAY)

    def step(x, y):
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss

    return step


def torchjax_step_memory_analysis(step: Any) -> Any:
    """XLA's ``memory_analysis()`` of the program ``torchjax.jit(step)`` last ran (its
    ``memory_analysis()`` method), or None before a compiled call."""
    return step.memory_analysis()


def optax_step(task: Task) -> tuple[Callable[[], jax.Array], Callable[[], Any]]:
    """The same step written by hand in JAX: ``to_jax`` + ``optax.adamw`` under ``jax.jit``,
    parameters and optimizer state donated. Returns the step (a zero-argument callable
    cycling through the batches) and a hook giving XLA's ``memory_analysis()`` of it."""
    params, buffers, apply = torchjax.to_jax(copy.deepcopy(task.model))
    params = jax.tree.map(jnp.copy, params)  # its own buffers to donate, not the torch model's
    tx = optax.adamw(LR, b1=BETAS[0], b2=BETAS[1], eps=EPS, weight_decay=WEIGHT_DECAY)

    def step(params, opt_state, x, y):
        def loss_of(p):
            out, _ = apply(p, buffers, x)
            return task.jax_loss(out, y)

        loss, grads = jax.value_and_grad(loss_of)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    jitted = jax.jit(step, donate_argnums=(0, 1))
    batches = itertools.cycle([tuple(map(_jax_input, batch)) for batch in task.batches])
    state = {"params": params, "opt_state": tx.init(params), "batch": None}

    def call():
        state["batch"] = x, y = next(batches)
        state["params"], state["opt_state"], loss = jitted(state["params"], state["opt_state"], x, y)
        return loss

    def memory():
        return jitted.lower(state["params"], state["opt_state"], *state["batch"]).compile().memory_analysis()

    return call, memory


def _jax_input(t: torch.Tensor) -> jax.Array:
    """What a JAX user passes: arrays already in JAX, int32 labels (x64 is off)."""
    return jnp.asarray(t.numpy(), None if t.is_floating_point() else jnp.int32)


def _cycling(step: Callable, batches: list) -> Callable[[], Any]:
    cycle = itertools.cycle(batches)
    return lambda: step(*next(cycle))


def training_case(id_: str, title: str, task: Task) -> Case:
    """The six contenders of one training step (see ``bench.harness.TRAINING_CONTENDERS``),
    each over its own copy of the model."""

    def step(model: torch.nn.Module, forward: Callable | None = None) -> Callable:
        return torch_step(model if forward is None else forward, list(model.parameters()), task.torch_loss)

    models = [copy.deepcopy(task.model) for _ in range(5)]
    jitted_step = torchjax.jit(step(models[4]))
    steps = {
        EAGER: step(models[0]),
        TORCH_COMPILE: step(models[1], torch.compile(models[1])),
        TORCH_COMPILE_STEP: torch.compile(step(models[2])),
        TORCHJAX_JIT_MODEL: step(models[3], torchjax.jit(models[3])),
        TORCHJAX_JIT_STEP: jitted_step,
    }
    optax_call, optax_memory = optax_step(task)
    return Case(
        id_,
        title,
        {**{name: _cycling(s, task.batches) for name, s in steps.items()}, OPTAX: optax_call},
        reference=EAGER,
        checked_calls=STEPS_CHECKED,
        peak_rss=True,
        xla_memory={TORCHJAX_JIT_STEP: lambda: torchjax_step_memory_analysis(jitted_step), OPTAX: optax_memory},
    )


def cases(quick: bool) -> list[Case]:
    batch = 2 if quick else 64
    gpt2_batch, seq = (2, 8) if quick else (8, 64)
    lm = gpt2(n_positions=64).train()  # dropout as configured there (none)
    vocab = lm.config.vocab_size
    ids = [torch.randint(vocab, (gpt2_batch, seq)) for _ in range(STEPS_CHECKED)]
    tasks = [
        ("W8a", f"MLP 784-128-128-10, batch {batch}",
         Task(mlp(), _labelled(lambda: torch.randn(batch, 784), 10, batch), F.cross_entropy, _jax_cross_entropy)),
        ("W8b", f"W1's CNN, batch {batch}",
         Task(SimpleCNN(), _labelled(lambda: torch.randn(batch, 1, 28, 28), 10, batch), F.nll_loss, _jax_nll)),
        ("W8c", f"GPT-2, batch {gpt2_batch}, seq {seq}",
         Task(lm, [(i, i) for i in ids], _lm_loss, _jax_lm_loss)),
    ]  # fmt: skip
    return [training_case(id_, f"{title}, AdamW step", task) for id_, title, task in tasks]
