"""Random ops: keys from torch's generator, fresh draws per call, the right distributions."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch

import torchjax

N = 10_000


def _draw(fn, *args):
    return torchjax.jit(fn)(*args)


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: torch.randn(4, 5) + x,
        lambda x: torch.rand(4, 5) * x,
        lambda x: torch.randint(0, 100, (4, 5)) + x.long(),
        lambda x: torch.nn.functional.dropout(x, 0.5),
    ],
    ids=["randn", "rand", "randint", "dropout"],
)
def test_manual_seed_reproduces_and_calls_differ(fn):
    x = torch.ones(4, 5)
    f = torchjax.jit(fn)
    torch.manual_seed(7)
    first = f(x)
    second = f(x)
    torch.manual_seed(7)
    again = f(x)
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    assert not torch.equal(first, second)


def test_to_jax_rng_key_is_explicit():
    f = torchjax.to_jax(lambda x: x + torch.randn(3))
    x = jax.numpy.zeros(3)
    key = jax.random.PRNGKey(0)
    a, b = f(x, rng_key=key), f(x, rng_key=key)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    c = f(x, rng_key=jax.random.PRNGKey(1))
    assert not np.array_equal(np.asarray(a), np.asarray(c))


def test_draws_inside_one_call_are_independent():
    a, b = _draw(lambda: (torch.randn(100), torch.randn(100)))
    assert not torch.equal(a, b)


# (factory, dtype, mean, std) of N draws
MOMENTS = {
    "rand": (lambda: torch.rand(N), torch.float32, 0.5, (1 / 12) ** 0.5),
    "randn": (lambda: torch.randn(N, dtype=torch.float64), torch.float64, 0.0, 1.0),
    "randn_bf16": (lambda: torch.randn(N, dtype=torch.bfloat16), torch.bfloat16, 0.0, 1.0),
    "randint": (lambda: torch.randint(-3, 7, (N,)), torch.int64, 1.5, (99 / 12) ** 0.5),
    "normal": (lambda: torch.normal(2.0, 3.0, (N,)), torch.float32, 2.0, 3.0),
    "normal_tensor": (lambda: torch.normal(torch.full((N,), -1.0), 0.5), torch.float32, -1.0, 0.5),
    "normal_": (lambda: torch.empty(N).normal_(4.0, 2.0), torch.float32, 4.0, 2.0),
    "uniform_": (lambda: torch.empty(N, dtype=torch.float64).uniform_(-2, 4), torch.float64, 1.0, 6 / 12**0.5),
    "exponential_": (lambda: torch.empty(N).exponential_(2.0), torch.float32, 0.5, 0.5),
    "geometric_": (lambda: torch.empty(N).geometric_(0.25), torch.float32, 4.0, (0.75 / 0.25**2) ** 0.5),
    "log_normal_": (lambda: torch.empty(N).log_normal_(0.0, 0.25), torch.float32, np.exp(0.25**2 / 2), None),
    "bernoulli": (lambda: torch.bernoulli(torch.full((N,), 0.3)), torch.float32, 0.3, (0.21) ** 0.5),
    "bernoulli_tensor_": (lambda: torch.zeros(N).bernoulli_(torch.full((N,), 0.7)), torch.float32, 0.7, 0.21**0.5),
    "poisson": (lambda: torch.poisson(torch.full((N,), 3.0)), torch.float32, 3.0, 3.0**0.5),
    "rand_like": (lambda: torch.rand_like(torch.empty(N, dtype=torch.float64)), torch.float64, 0.5, (1 / 12) ** 0.5),
}


@pytest.mark.parametrize("name", sorted(MOMENTS))
def test_moments(name):
    fn, dtype, mean, std = MOMENTS[name]
    out = _draw(fn)
    assert out.shape == (N,) and out.dtype == dtype
    values = out.double()
    # 5 standard errors: a correct sampler fails this about once in a million runs
    scale = std if std is not None else values.std().item()
    assert abs(values.mean().item() - mean) < 5 * scale / N**0.5 + 0.01 * (dtype == torch.bfloat16)
    if std is not None:
        assert abs(values.std().item() - std) < 0.05 * std


def test_ranges():
    u = _draw(lambda: torch.empty(N).uniform_(3.0, 5.0))
    assert (u >= 3).all() and (u < 5).all()
    r = _draw(lambda: torch.randint(-3, 7, (N,), dtype=torch.int32))
    assert r.dtype == torch.int32 and r.min() == -3 and r.max() == 6
    g = _draw(lambda: torch.empty(N, dtype=torch.int64).geometric_(0.5))
    assert g.dtype == torch.int64 and g.min() >= 1
    e = _draw(lambda: torch.empty(N).exponential_())
    assert (e >= 0).all()


def test_bernoulli_zero_and_one_are_exact():
    out = _draw(
        lambda: (
            torch.bernoulli(torch.zeros(N)),
            torch.bernoulli(torch.ones(N)),
            torch.empty(N).bernoulli_(torch.zeros(N)),
            torch.bernoulli(torch.empty(N, dtype=torch.float64), 1.0),
            torch.bernoulli(torch.empty(N, dtype=torch.float64), 0.0),
        )
    )
    zeros, ones, inplace_zeros, p_one, p_zero = out
    assert zeros.sum() == 0 and inplace_zeros.sum() == 0 and p_zero.sum() == 0
    assert ones.sum() == N and p_one.sum() == N


def test_randperm_and_multinomial():
    p = _draw(lambda: torch.randperm(50))
    assert p.dtype == torch.int64 and sorted(p.tolist()) == list(range(50))
    probs = torch.tensor([[0.0, 1.0, 3.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    no_rep = _draw(lambda w: torch.multinomial(w, 2), probs)
    assert no_rep.shape == (2, 2) and no_rep.dtype == torch.int64
    assert sorted(no_rep[0].tolist()) == [1, 2]  # zero weights are never drawn
    assert len(set(no_rep[1].tolist())) == 2  # without replacement: distinct
    rep = _draw(lambda w: torch.multinomial(w, N, replacement=True), probs[0])
    assert set(rep.tolist()) <= {1, 2}
    assert abs((rep == 2).double().mean().item() - 0.75) < 0.03
