"""torchjax.functorch and torchjax.autograd.functional against torch's own."""

from __future__ import annotations

import pytest
import torch
import torch.autograd.functional as TAF

import torchjax.autograd.functional as JAF
import torchjax.functorch as functorch
from torchjax.testing import assert_close_tree

TOL = dict(rtol=1e-5, atol=1e-6)


def test_make_functional_matches_module():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    fmodel, params = functorch.make_functional(model)
    x = torch.randn(5, 3)
    torch.testing.assert_close(fmodel(params, x), model(x), **TOL)
    grads = functorch.grad(lambda p: fmodel(p, x).sum())(params)
    expected = torch.autograd.grad(model(x).sum(), list(model.parameters()))
    assert_close_tree(tuple(grads), tuple(expected), **TOL)
    # the functional module holds no parameter memory of its own
    assert all(p.device.type == "meta" for p in fmodel.stateless.parameters())


def test_make_functional_rejects_buffers():
    with pytest.raises(RuntimeError, match="make_functional_with_buffers"):
        functorch.make_functional(torch.nn.BatchNorm1d(3))


def test_make_functional_with_buffers_and_ensemble():
    models = [torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3)).eval() for _ in range(3)]
    fmodel, params, buffers = functorch.make_functional_with_buffers(models[0])
    x = torch.randn(4, 3)
    torch.testing.assert_close(fmodel(params, buffers, x), models[0](x), **TOL)
    fmodel, params, buffers = functorch.combine_state_for_ensemble(models)
    out = functorch.vmap(fmodel, in_dims=(0, 0, None))(params, buffers, x)
    torch.testing.assert_close(out, torch.stack([m(x) for m in models]).detach(), **TOL)
    with pytest.raises(RuntimeError, match="at least one model"):
        functorch.combine_state_for_ensemble([])


def f1(x):
    return (x.sin() * x).sum()


def f2(x, y):
    return (x.exp() * y.cos()).sum()


def fvec(x, y):
    return x * y.sum(), (x**2).sum()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_autograd_functional(dtype):
    tol = TOL if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    x, y = torch.randn(3, dtype=dtype), torch.randn(3, dtype=dtype)
    v = torch.randn(3, dtype=dtype)
    assert_close_tree(JAF.vjp(f1, x), TAF.vjp(f1, x), **tol)
    assert_close_tree(JAF.vjp(f2, (x, y)), TAF.vjp(f2, (x, y)), **tol)
    assert_close_tree(JAF.jvp(torch.sin, x, v), TAF.jvp(torch.sin, x, v), **tol)
    assert_close_tree(JAF.jacobian(torch.sin, x), TAF.jacobian(torch.sin, x), **tol)
    assert_close_tree(JAF.jacobian(fvec, (x, y)), TAF.jacobian(fvec, (x, y)), **tol)
    assert_close_tree(
        JAF.jacobian(fvec, (x, y), vectorize=True, strategy="forward-mode"),
        TAF.jacobian(fvec, (x, y), vectorize=True, strategy="forward-mode"),
        **tol,
    )
    assert_close_tree(JAF.hessian(f1, x), TAF.hessian(f1, x), **tol)
    assert_close_tree(JAF.hessian(f2, (x, y)), TAF.hessian(f2, (x, y)), **tol)
    assert_close_tree(JAF.hvp(f1, x, v), TAF.hvp(f1, x, v), **tol)
    assert_close_tree(JAF.vhp(f2, (x, y), (v, v)), TAF.vhp(f2, (x, y), (v, v)), **tol)


def test_autograd_functional_errors():
    x = torch.randn(3)
    for api in (JAF, TAF):
        with pytest.raises(AssertionError, match="strategy"):  # torch's class; ours is also a ValueError
            api.jacobian(torch.sin, x, strategy="sideways")
        with pytest.raises(NotImplementedError):
            api.jacobian(torch.sin, x, strategy="forward-mode")
        with pytest.raises(RuntimeError, match="v can only be None"):
            api.vjp(torch.sin, x)
        with pytest.raises(TypeError):
            api.vjp(f1, [1, 2])
