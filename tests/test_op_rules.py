"""Rules the OpInfo samples cannot check on their own, checked against torch directly.

The OpInfo samples of fractional max pooling draw their ``random_samples`` from torch's
generator inside the op; given the same samples the rule must match torch exactly.
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
