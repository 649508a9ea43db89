"""torchjax.func against torch.func on the same functions and inputs, float32 and float64."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.func as tf

import torchjax.func as jf
from torchjax.testing import assert_close_tree

DTYPES = [torch.float32, torch.float64]
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-12, atol=1e-12)}


def both(make, *args, dtype=torch.float32, **kwargs):
    """Run ``make(api)(*args)`` for torch.func and torchjax.func; compare."""
    expected = make(tf)(*args, **kwargs)
    actual = make(jf)(*args, **kwargs)
    assert_close_tree(actual, expected, **TOL[dtype])
    return actual


def f_scalar(x):
    return (torch.sin(x) * x.exp()).sum()


def f_vec(x):
    return torch.tanh(x) * x.sum()


def f_two(x, y):
    return (x * y.cos()).sum() + (y**2).sum()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
class TestGrad:
    def test_grad(self, dtype):
        x = torch.randn(5, dtype=dtype)
        both(lambda api: api.grad(f_scalar), x, dtype=dtype)

    def test_grad_argnums_tuple(self, dtype):
        x, y = torch.randn(3, dtype=dtype), torch.randn(3, dtype=dtype)
        both(lambda api: api.grad(f_two, argnums=(0, 1)), x, y, dtype=dtype)
        both(lambda api: api.grad(f_two, argnums=1), x, y, dtype=dtype)
        both(lambda api: api.grad(f_two, argnums=-1), x, y, dtype=dtype)

    def test_grad_has_aux_and_value(self, dtype):
        x = torch.randn(4, dtype=dtype)

        def f(x):
            return (x**2).sum(), {"mean": x.mean(), "x": x * 2}

        both(lambda api: api.grad(f, has_aux=True), x, dtype=dtype)
        both(lambda api: api.grad_and_value(f, has_aux=True), x, dtype=dtype)
        both(lambda api: api.grad_and_value(f_scalar), x, dtype=dtype)

    def test_grad_pytree_input_and_kwargs(self, dtype):
        params = {"w": torch.randn(3, 2, dtype=dtype), "b": [torch.randn(2, dtype=dtype)]}
        x = torch.randn(4, 3, dtype=dtype)

        def loss(p, x, scale=1.0):
            return ((x @ p["w"] + p["b"][0]) ** 2).sum() * scale

        both(lambda api: functools.partial(api.grad(loss), scale=3.0), params, x, dtype=dtype)

    def test_grad_of_grad(self, dtype):
        x = torch.randn((), dtype=dtype)
        both(lambda api: api.grad(api.grad(torch.sin)), x, dtype=dtype)

    def test_vjp(self, dtype):
        x, y = torch.randn(3, dtype=dtype), torch.randn(3, dtype=dtype)

        def f(x, y):
            return x.sin() * y, (x * y).sum()

        def run(api):
            out, fn = api.vjp(f, x, y)
            return out, fn((torch.ones(3, dtype=dtype), torch.tensor(2.0, dtype=dtype)))

        assert_close_tree(run(jf), run(tf), **TOL[dtype])

    def test_vjp_has_aux(self, dtype):
        x = torch.randn(3, dtype=dtype)

        def run(api):
            out, fn, aux = api.vjp(lambda x: (x.exp(), x.sum()), x, has_aux=True)
            return out, fn(torch.ones(3, dtype=dtype)), aux

        assert_close_tree(run(jf), run(tf), **TOL[dtype])

    def test_jvp_and_linearize(self, dtype):
        x, t = torch.randn(4, dtype=dtype), torch.randn(4, dtype=dtype)
        both(lambda api: lambda: api.jvp(f_vec, (x,), (t,)), dtype=dtype)

        def run(api):
            out, fn = api.linearize(f_vec, x)
            return out, fn(t), fn(2 * t)

        assert_close_tree(run(jf), run(tf), **TOL[dtype])

    def test_jacobians(self, dtype):
        x, y = torch.randn(3, dtype=dtype), torch.randn(2, dtype=dtype)

        def f(x, y):
            return {"a": x.sin() * y.sum(), "b": (x.outer(y)).exp()}

        for api_name in ("jacrev", "jacfwd"):
            both(lambda api, n=api_name: getattr(api, n)(f), x, y, dtype=dtype)
            both(lambda api, n=api_name: getattr(api, n)(f, argnums=(0, 1)), x, y, dtype=dtype)
        both(lambda api: api.jacrev(lambda x: (x.sin(), x.sum()), has_aux=True), x, dtype=dtype)

    def test_hessian(self, dtype):
        x = torch.randn(4, dtype=dtype)
        both(lambda api: api.hessian(f_scalar), x, dtype=dtype)
        y = torch.randn(4, dtype=dtype)
        both(lambda api: api.hessian(f_two, argnums=(0, 1)), x, y, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
class TestVmap:
    def test_in_dims_out_dims(self, dtype):
        x, y = torch.randn(4, 3, dtype=dtype), torch.randn(3, 5, dtype=dtype)
        both(lambda api: api.vmap(torch.mul, in_dims=(0, None)), x, y[:, 0], dtype=dtype)
        both(lambda api: api.vmap(torch.mv, in_dims=(None, 1)), x, y, dtype=dtype)
        both(lambda api: api.vmap(lambda a: (a.sum(), a * 2), out_dims=(0, 1)), x, dtype=dtype)
        both(lambda api: api.vmap(torch.sin, in_dims=-1, out_dims=-1), x, dtype=dtype)

    def test_nested_in_dims_and_kwargs(self, dtype):
        tree = {"a": torch.randn(4, 2, dtype=dtype), "b": (torch.randn(2, 4, dtype=dtype), 3)}

        def f(t, scale):
            return t["a"] * t["b"][0] * t["b"][1] * scale

        def g(t, scale, *, offset):
            return f(t, scale) + offset

        both(lambda api: functools.partial(api.vmap(g, in_dims=({"a": 0, "b": (1, None)}, None)), offset=2.0),
             tree, 1.5, dtype=dtype)  # fmt: skip

    def test_vmap_of_vmap_and_grad(self, dtype):
        x = torch.randn(3, 4, 5, dtype=dtype)
        both(lambda api: api.vmap(api.vmap(torch.dot)), x, x, dtype=dtype)
        both(lambda api: api.vmap(api.grad(f_scalar)), x[0], dtype=dtype)
        both(lambda api: api.vmap(lambda v: api.grad(f_scalar)(v) * 2), x[0], dtype=dtype)
        both(lambda api: api.vmap(api.jvp, in_dims=(None, 0, 0)), torch.sin, (x[0],), (x[1],), dtype=dtype)

    def test_hessian_of_vmapped(self, dtype):
        x = torch.randn(3, dtype=dtype)
        both(lambda api: api.hessian(lambda v: api.vmap(torch.sin)(v).pow(2).sum()), x, dtype=dtype)
        both(lambda api: api.jacfwd(api.jacrev(f_vec)), x, dtype=dtype)

    def test_chunk_size(self, dtype):
        x = torch.randn(7, 3, dtype=dtype)
        both(lambda api: api.vmap(lambda v: v.exp().sum(), chunk_size=3), x, dtype=dtype)

    def test_per_sample_grads(self, dtype):
        model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).to(dtype)
        params = {k: v.detach() for k, v in model.named_parameters()}
        x, t = torch.randn(6, 5, dtype=dtype), torch.randn(6, 2, dtype=dtype)

        def make(api):
            def loss(p, xi, ti):
                out = api.functional_call(model, p, (xi.unsqueeze(0),))
                return torch.nn.functional.mse_loss(out, ti.unsqueeze(0))

            return api.vmap(api.grad(loss), in_dims=(None, 0, 0))

        both(make, params, x, t, dtype=dtype)

    def test_ensembling(self, dtype):
        models = [torch.nn.Linear(3, 2).to(dtype) for _ in range(4)]
        params, buffers = tf.stack_module_state(models)
        base = models[0]
        x = torch.randn(5, 3, dtype=dtype)

        def make(api):
            return api.vmap(lambda p, b, x: api.functional_call(base, (p, b), (x,)), in_dims=(0, 0, None))

        both(make, params, buffers, x, dtype=dtype)


def test_randomness_modes():
    x = torch.zeros(4)
    diff = jf.vmap(lambda v: v + torch.rand(()), randomness="different")(x)
    same = jf.vmap(lambda v: v + torch.rand(()), randomness="same")(x)
    assert len(set(diff.tolist())) == 4
    assert len(set(same.tolist())) == 1
    with pytest.raises(RuntimeError, match="randomness error mode"):
        jf.vmap(lambda v: v + torch.rand(()))(x)
    torch.manual_seed(3)
    a = jf.vmap(lambda v: v + torch.randn(()), randomness="different")(x)
    torch.manual_seed(3)
    b = jf.vmap(lambda v: v + torch.randn(()), randomness="different")(x)
    c = jf.vmap(lambda v: v + torch.randn(()), randomness="different")(x)
    torch.testing.assert_close(a, b)
    assert not torch.equal(b, c)


def test_non_random_functions_leave_torch_rng_alone():
    torch.manual_seed(0)
    jf.grad(f_scalar)(torch.ones(3))
    after_jf = torch.rand(3)
    torch.manual_seed(0)
    tf.grad(f_scalar)(torch.ones(3))
    torch.testing.assert_close(after_jf, torch.rand(3))


def test_parameters_read_afresh_every_call():
    model = torch.nn.Linear(3, 1)
    x = torch.randn(2, 3)

    def loss(x):
        return model(x).sum()

    g = jf.grad(loss)
    first = g(x)
    with torch.no_grad():
        model.weight.mul_(3)
    torch.testing.assert_close(g(x), tf.grad(loss)(x))
    assert not torch.allclose(first, g(x))


def test_functionalize_applies_input_mutation():
    def f(x):
        x.add_(1)
        y = x.view(-1)
        y[0] = 10.0
        return x * 2

    a, b = torch.zeros(2, 2), torch.zeros(2, 2)
    assert_close_tree(jf.functionalize(f)(a), tf.functionalize(f)(b))
    torch.testing.assert_close(a, b)


def test_grad_falls_back_to_torch_func_on_data_dependent_control_flow():
    def f(x):
        if x.sum() > 0:
            return (x**2).sum()
        return x.sum()

    with pytest.warns(RuntimeWarning, match="running it with torch.func"):
        g = jf.grad(f)(torch.ones(3))
    torch.testing.assert_close(g, tf.grad(f)(torch.ones(3)))


def test_vmap_data_dependent_control_flow_points_at_line():
    def f(x):
        if x.sum() > 0:  # user's branch
            return x
        return -x

    with pytest.raises(RuntimeError, match="user's branch"):
        jf.vmap(f)(torch.ones(2, 3))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_jacobians_run_in_the_mode_with_fewer_passes(dtype, monkeypatch):
    import jax

    from torchjax._src.transforms import autodiff

    used = []

    def spy(mode):
        def run(*args, **kwargs):
            used.append(mode.__name__)
            return mode(*args, **kwargs)

        return run

    monkeypatch.setitem(autodiff._OTHER_MODE, jax.jacrev, spy(jax.jacfwd))
    monkeypatch.setitem(autodiff._OTHER_MODE, jax.jacfwd, spy(jax.jacrev))
    w = torch.randn(40, 3, dtype=dtype)

    def wide_out(x, y):  # 3 + 2 inputs, 40 + 2 outputs: jacrev runs forward
        return {"a": (w @ x).tanh() * y.sum(), "b": y.exp()}

    def wide_in(x):  # 40 inputs, 3 outputs: jacfwd runs reverse
        return (w.T @ x).sin()

    def modes(make, *args):  # the other modes each call ran in (a call may trace twice)
        used.clear()
        both(make, *args, dtype=dtype)
        return set(used)

    x, y, z = torch.randn(3, dtype=dtype), torch.randn(2, dtype=dtype), torch.randn(40, dtype=dtype)
    assert modes(lambda api: api.jacrev(wide_out, argnums=(0, 1)), x, y) == {"jacfwd"}
    assert modes(lambda api: api.jacrev(lambda x: (wide_out(x, y)["a"], x.sum()), has_aux=True), x) == {"jacfwd"}
    assert modes(lambda api: api.jacfwd(wide_in), z) == {"jacrev"}
    assert modes(lambda api: api.jacrev(wide_in), z) == set()  # already the cheaper mode
    assert modes(lambda api: api.jacrev(lambda x: x.sin() * 2), x) == set()  # 3 -> 3: no gain
    # a fresh random draw per forward pass was asked for: forward mode stays
    assert modes(lambda api: api.jacfwd(wide_in, randomness="different"), z) == set()


def test_jacobian_keeps_the_requested_mode_when_the_other_cannot_trace():
    # max_unpool's rule defines only a reverse derivative (a custom_vjp): the 8 -> 16
    # jacrev cannot run forward, so it runs in reverse mode as asked.
    indices = torch.tensor([[[1, 3, 4, 7, 9, 10, 13, 15]]])

    def unpool(v):
        return torch.nn.functional.max_unpool1d(v.reshape(1, 1, 8), indices, 2, output_size=(16,)).reshape(-1) * 2

    v = torch.randn(8)
    both(lambda api: api.jacrev(unpool), v)
