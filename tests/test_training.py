"""Training torch models through torchjax: plain SGD against torch's, and optax under jax.jit."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest
import torch
import torch.nn.functional as F

import torchjax

optax = pytest.importorskip("optax")


class SmallCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.fc1 = torch.nn.Linear(4 * 4 * 4, 16)
        self.fc2 = torch.nn.Linear(16, 3)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv(x)), 2)
        return self.fc2(torch.tanh(self.fc1(x.flatten(1))))


def test_sgd_through_torchjax_matches_torch_sgd():
    """Five SGD steps with torchjax.func.grad give torch.optim.SGD's parameters (float64)."""
    lr, steps = 0.1, 5
    model = SmallCNN().double()
    reference = copy.deepcopy(model)
    batches = [(torch.randn(6, 1, 8, 8, dtype=torch.float64), torch.randint(0, 3, (6,))) for _ in range(steps)]

    optimizer = torch.optim.SGD(reference.parameters(), lr=lr)
    for x, y in batches:
        optimizer.zero_grad()
        F.cross_entropy(reference(x), y).backward()
        optimizer.step()

    params = {k: v.detach().clone() for k, v in model.named_parameters()}

    def loss(p, x, y):
        return F.cross_entropy(torch.func.functional_call(model, p, (x,)), y)

    grad = torchjax.func.grad(loss)
    with jax.enable_x64(True):
        for x, y in batches:
            grads = grad(params, x, y)
            params = {k: params[k] - lr * grads[k] for k in params}

    for k, expected in reference.named_parameters():
        assert params[k].dtype == torch.float64
        torch.testing.assert_close(params[k], expected.detach(), rtol=1e-10, atol=1e-12)
        assert not torch.equal(expected.detach(), dict(model.named_parameters())[k].detach())  # it did train


def _blobs(key, n=96, classes=3, dim=2):
    """Three separable Gaussian blobs."""
    kc, kx = jax.random.split(key)
    centers = 3.0 * jax.random.normal(kc, (classes, dim))
    labels = jnp.arange(n) % classes
    return centers[labels] + 0.5 * jax.random.normal(kx, (n, dim)), labels


def test_optax_adam_under_jit_reduces_loss():
    model = torch.nn.Sequential(
        torch.nn.Linear(2, 32), torch.nn.BatchNorm1d(32), torch.nn.ReLU(), torch.nn.Linear(32, 3)
    ).train()
    params, buffers, apply = torchjax.to_jax(model)
    optimizer = optax.adam(3e-2)
    opt_state = optimizer.init(params)

    def loss_fn(params, buffers, x, labels):
        logits, new_buffers = apply(params, buffers, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(), new_buffers

    traces = []

    @jax.jit
    def step(params, buffers, opt_state, x, labels):
        traces.append(1)
        (loss, buffers), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, buffers, x, labels)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), buffers, opt_state, loss

    x, labels = _blobs(jax.random.key(0))
    losses = []
    with jax.enable_x64(True):  # BatchNorm's num_batches_tracked is int64
        for _ in range(20):
            params, buffers, opt_state, loss = step(params, buffers, opt_state, x, labels)
            losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0], losses
    assert all(jnp.isfinite(jnp.asarray(losses)))
    assert int(buffers["1.num_batches_tracked"]) == 20
    assert len(traces) == 1  # one trace (and compilation) for all 20 steps

    # The trained state loaded back into torch gives what the JAX apply gives.
    model.load_state_dict({**torchjax.to_torch(params), **torchjax.to_torch(buffers)})
    model.eval()
    with jax.enable_x64(True):
        expected, _ = jax.jit(torchjax.to_jax(model).apply)(params, buffers, x)
    with torch.no_grad():
        torch.testing.assert_close(model(torchjax.to_torch(x)), torchjax.to_torch(expected), rtol=1e-5, atol=1e-5)


def test_train_optax_example_runs():
    path = Path(__file__).resolve().parent.parent / "examples" / "train_optax.py"
    spec = importlib.util.spec_from_file_location("train_optax", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    losses = example.main(steps=30, verbose=False)
    assert len(losses) == 30
    assert sum(losses[-5:]) / 5 < 0.5 * losses[0], losses


def test_optax_step_compiles_once():
    model = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 1)).train()
    params, buffers, apply = torchjax.to_jax(model)
    optimizer = optax.sgd(1e-2)
    opt_state = optimizer.init(params)
    traces = []

    @jax.jit
    def step(params, buffers, opt_state, x):
        # Counted at trace time: JAX traces once per compiled signature. (The C++ fast-path
        # cache size is an implementation detail that other jitted code can evict.)
        traces.append(1)
        (loss, buffers), grads = jax.value_and_grad(
            lambda p: (lambda out: (jnp.square(out[0]).mean(), out[1]))(apply(p, buffers, x)), has_aux=True
        )(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), buffers, opt_state, loss

    with jax.enable_x64(True):
        for _ in range(3):
            params, buffers, opt_state, _ = step(params, buffers, opt_state, jnp.ones((4, 2)))
    assert len(traces) == 1
