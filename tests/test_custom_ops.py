"""torch.library custom ops convert without a hand-written rule; register_autograd is the gradient.

torch.func cannot transform custom ops with a registered backward today, so eager
autograd (``loss.backward()``) is the reference.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import torchjax
import torchjax.func as jf


@torch.library.custom_op("tjtest::scaled_sin", mutates_args=())
def scaled_sin(x: torch.Tensor, scale: float = 2.0) -> torch.Tensor:
    return torch.sin(x) * scale


@scaled_sin.register_fake
def _(x, scale=2.0):
    return torch.empty_like(x)


def _setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[0])
    ctx.scale = inputs[1]


def _backward(ctx, g):
    # deliberately not the derivative of the forward: proves the registered rule is used
    (x,) = ctx.saved_tensors
    return g * ctx.scale * torch.cos(x) * 0.5 + 1.0, None


scaled_sin.register_autograd(_backward, setup_context=_setup)


@torch.library.custom_op("tjtest::plain_tanh", mutates_args=())
def plain_tanh(x: torch.Tensor) -> torch.Tensor:
    return torch.tanh(x) + 0.0


@plain_tanh.register_fake
def _(x):
    return torch.empty_like(x)


@torch.library.custom_op("tjtest::numpy_cube", mutates_args=())
def numpy_cube(x: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.asarray(x.numpy()) ** 3)


@numpy_cube.register_fake
def _(x):
    return torch.empty_like(x)


def _cube_setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[0])


def _cube_backward(ctx, g):
    (x,) = ctx.saved_tensors
    return g * 3 * x * x


numpy_cube.register_autograd(_cube_backward, setup_context=_cube_setup)


def _eager_grad(f, x):
    x = x.clone().requires_grad_(True)
    f(x).backward()
    return x.grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_registered_backward_is_the_gradient(dtype):
    x = torch.tensor([0.3, -1.2, 2.0], dtype=dtype)
    f = lambda x: (scaled_sin(x, 3.0) * x).sum()
    expected = _eager_grad(f, x)
    torch.testing.assert_close(jf.grad(f)(x), expected)
    torch.testing.assert_close(jf.vjp(f, x)[1](torch.ones((), dtype=dtype))[0], expected)
    torch.testing.assert_close(jf.jacrev(f)(x), expected)
    torch.testing.assert_close(torchjax.jit(lambda x: scaled_sin(x, 3.0))(x), scaled_sin(x, 3.0))
    X = torch.stack([x, x * 2])
    torch.testing.assert_close(jf.vmap(jf.grad(f))(X), torch.stack([_eager_grad(f, r) for r in X]))


def test_default_argument_reaches_setup_context():
    x = torch.tensor([0.5, 1.5])
    f = lambda x: scaled_sin(x).sum()
    torch.testing.assert_close(jf.grad(f)(x), _eager_grad(f, x))


def test_op_without_registered_backward_is_traced():
    x = torch.tensor([0.5, -1.5])
    torch.testing.assert_close(torchjax.jit(plain_tanh)(x), torch.tanh(x))
    torch.testing.assert_close(jf.grad(lambda x: plain_tanh(x).sum())(x), 1 - torch.tanh(x) ** 2)


def test_to_jax_with_jax_grad():
    f = torchjax.to_jax(lambda x: (scaled_sin(x, 3.0) * x).sum())
    x = torch.tensor([0.3, -1.2, 2.0])
    got = jax.grad(f)(jnp.asarray(x.numpy()))
    torch.testing.assert_close(
        torch.from_numpy(np.array(got)), _eager_grad(lambda x: (scaled_sin(x, 3.0) * x).sum(), x)
    )


def test_untraceable_implementation_names_the_op_and_the_fixes():
    with pytest.raises(torchjax.UnsupportedOpError, match=r"(?s)tjtest.numpy_cube.*register_op.*register_callback"):
        torchjax.jit(numpy_cube)(torch.ones(2))


def test_callback_runs_the_implementation_on_the_host():
    torchjax.register_callback(torch.ops.tjtest.numpy_cube.default)
    x = torch.tensor([0.5, -2.0, 3.0])
    torch.testing.assert_close(torchjax.jit(numpy_cube)(x), x**3)
    f = lambda x: (numpy_cube(x) * x).sum()
    torch.testing.assert_close(jf.grad(f)(x), _eager_grad(f, x))
    X = torch.stack([x, -x])
    torch.testing.assert_close(jf.vmap(numpy_cube)(X), X**3)
    with pytest.raises(TypeError, match="register_callback"):
        torchjax.register_callback(numpy_cube)
