"""Rules the OpInfo samples cannot check on their own, checked against torch directly.

The OpInfo samples of fractional max pooling draw their ``random_samples`` from torch's
generator inside the op; given the same samples the rule must match torch exactly. The
default OpInfo run checks complex inputs in forward only, and only the first sample.
"""

from __future__ import annotations

import pytest
import torch

import torchjax


@pytest.mark.parametrize(
    ("op", "shape", "kernel", "output"),
    [
        (torch.ops.aten.fractional_max_pool2d, (2, 3, 9, 8), [3, 2], [5, 6]),
        (torch.ops.aten.fractional_max_pool3d, (2, 3, 7, 8, 9), [2, 2, 2], [4, 5, 6]),
    ],
    ids=["2d", "3d"],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_fractional_max_pool_given_samples(op, shape, kernel, output, dtype):
    x = torch.randn(shape, dtype=dtype)
    samples = torch.rand(shape[0], shape[1], len(kernel), dtype=dtype)
    f = lambda x, s: op(x, kernel, output, s)
    got, want = torchjax.jit(f)(x, samples), f(x, samples)
    torch.testing.assert_close(got[0], want[0], rtol=0, atol=0)
    assert torch.equal(got[1], want[1])  # the argmax indices
    grad = torchjax.func.grad(lambda x: f(x, samples)[0].square().sum())(x)
    torch.testing.assert_close(grad, torch.func.grad(lambda x: f(x, samples)[0].square().sum())(x))


def test_op_that_writes_an_argument_updates_it():
    # rrelu_with_noise writes the slopes it draws into `noise`; the in-place form also `self`
    x = torch.randn(64)
    noise = torch.zeros(64)
    out = torchjax.jit(lambda x, n: torch.ops.aten.rrelu_with_noise(x, n, 0.1, 0.3, True))(x, noise)
    torch.testing.assert_close(out, torch.where(x <= 0, x * noise, x))
    assert ((noise[x <= 0] >= 0.1) & (noise[x <= 0] <= 0.3)).all() and (noise[x > 0] == 1).all()
    y = x.clone()
    back = torchjax.jit(lambda y: torch.nn.functional.rrelu(y, training=True, inplace=True))(y)
    assert torch.equal(back, y) and not torch.equal(y, x) and torch.equal(y[x > 0], x[x > 0])


def test_native_batch_norm_legit_updates_running_stats():
    bn, ref = torch.nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    x = torch.randn(5, 3)
    want = ref.train()(x)
    op = torch.ops.aten._native_batch_norm_legit
    got = torchjax.jit(lambda t: op(t, bn.weight, bn.bias, bn.running_mean, bn.running_var, True, 0.1, 1e-5)[0])(x)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(bn.running_mean, ref.running_mean)
    torch.testing.assert_close(bn.running_var, ref.running_var)


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128], ids=str)
@pytest.mark.parametrize("op", [torch.dot, torch.vdot], ids=["dot", "vdot"])
def test_dot_conjugates_only_for_vdot(op, dtype):
    a, b = torch.randn(7, dtype=dtype), torch.randn(7, dtype=dtype)
    torch.testing.assert_close(torchjax.jit(op)(a, b), op(a, b))
    # and the derivative: forward mode, which has no convention for complex gradients to differ in
    tangents = (torch.randn(7, dtype=dtype), torch.randn(7, dtype=dtype))
    torch.testing.assert_close(torchjax.func.jvp(op, (a, b), tangents), torch.func.jvp(op, (a, b), tangents))
