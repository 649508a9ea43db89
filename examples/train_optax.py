"""Train a PyTorch model with optax, through torchjax.

The model is ordinary torch code (an ``nn.Module``). ``torchjax.to_jax`` turns it into
its parameters and buffers as ``jax.Array`` dicts plus a pure ``apply`` function; from
there it is plain JAX: the loss is written with ``jax.numpy``, ``jax.grad``
differentiates through the torch code, ``optax.adam`` updates the parameters, and the
whole step (forward, backward, update, BatchNorm statistics) is one ``jax.jit``
executable. At the end the trained values are copied back into the torch module.

Run it with ``python examples/train_optax.py``; it fits a noisy 2-D function in a few
seconds on a CPU.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import optax
import torch

import torchjax


class Regressor(torch.nn.Module):
    """A small MLP with BatchNorm (its running statistics are buffers that training updates)."""

    def __init__(self, width: int = 64):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(2, width),
            torch.nn.BatchNorm1d(width),
            torch.nn.GELU(),
            torch.nn.Linear(width, width),
            torch.nn.Tanh(),
            torch.nn.Linear(width, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


def make_data(key: jax.Array, n: int = 512) -> tuple[jax.Array, jax.Array]:
    """Points in [-2, 2]^2 and a smooth target, sin(x) * cos(y), with a little noise."""
    kx, kn = jax.random.split(key)
    x = jax.random.uniform(kx, (n, 2), minval=-2.0, maxval=2.0)
    y = jnp.sin(x[:, 0]) * jnp.cos(x[:, 1]) + 0.05 * jax.random.normal(kn, (n,))
    return x, y


def main(steps: int = 300, batch: int = 64, learning_rate: float = 1e-2, verbose: bool = True) -> list[float]:
    """Train ``Regressor`` with Adam for ``steps`` steps; return the loss at every step."""
    torch.manual_seed(0)
    model = Regressor().train()
    params, buffers, apply = torchjax.to_jax(model)

    optimizer = optax.adam(learning_rate)
    opt_state = optimizer.init(params)

    def loss_fn(params, buffers, x, y):
        prediction, new_buffers = apply(params, buffers, x)  # torch code, traced by JAX
        return jnp.mean((prediction - y) ** 2), new_buffers

    @jax.jit
    def train_step(params, buffers, opt_state, x, y):
        (loss, buffers), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, buffers, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), buffers, opt_state, loss

    x_all, y_all = make_data(jax.random.key(0))
    losses = []
    start = time.perf_counter()
    # num_batches_tracked is an int64 buffer: x64 keeps it (and torch's dtypes) exact.
    with jax.enable_x64(True):
        for step in range(steps):
            idx = jax.random.choice(jax.random.key(step + 1), x_all.shape[0], (batch,), replace=False)
            params, buffers, opt_state, loss = train_step(params, buffers, opt_state, x_all[idx], y_all[idx])
            losses.append(float(loss))
            if verbose and (step % 50 == 0 or step == steps - 1):
                print(f"step {step:4d}  loss {losses[-1]:.4f}")
    if verbose:
        print(f"{steps} steps in {time.perf_counter() - start:.2f} s (first step includes compilation)")

    # Hand the trained state back to torch: the module now holds what optax learned.
    model.load_state_dict({**torchjax.to_torch(params), **torchjax.to_torch(buffers)})
    if verbose:
        model.eval()
        x_test, y_test = make_data(jax.random.key(1), n=256)
        with torch.no_grad():
            pred = model(torchjax.to_torch(x_test))
        print(f"torch eval MSE after training: {torch.mean((pred - torchjax.to_torch(y_test)) ** 2):.4f}")
    return losses


if __name__ == "__main__":
    main()
