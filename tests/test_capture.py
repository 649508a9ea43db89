"""to_jax / jit: capture semantics, no stale state, clear errors, the op registry."""

from __future__ import annotations

import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import torchjax
from torchjax._src.compile import jit_disabled
from torchjax._src.registry import register


def test_to_jax_function_under_jit_grad_vmap():
    f = torchjax.to_jax(lambda x, y: torch.sin(x) * y)
    x, y = jnp.arange(3.0), jnp.full(3, 2.0)
    np.testing.assert_allclose(f(x, y), np.sin(np.arange(3.0)) * 2, rtol=1e-6)
    np.testing.assert_allclose(jax.jit(f)(x, y), np.sin(np.arange(3.0)) * 2, rtol=1e-6)
    g = jax.grad(lambda x: f(x, y).sum())(x)
    np.testing.assert_allclose(g, 2 * np.cos(np.arange(3.0)), rtol=1e-6)
    v = jax.vmap(f, in_axes=(0, None))(jnp.ones((4, 3)), y)
    assert v.shape == (4, 3)


def test_closure_tensor_update_is_seen():
    w = torch.ones(3)
    f = torchjax.to_jax(lambda x: x * w)
    np.testing.assert_array_equal(f(jnp.ones(3)), np.ones(3))
    w.add_(1)  # in place: same tensor, new value
    np.testing.assert_array_equal(f(jnp.ones(3)), np.full(3, 2.0))
    with torch.no_grad():
        w.copy_(torch.tensor([5.0, 6.0, 7.0]))
    np.testing.assert_array_equal(f(jnp.ones(3)), [5.0, 6.0, 7.0])


def test_jit_sees_optimizer_step():
    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    fast = torchjax.jit(model)
    x = torch.randn(2, 4)
    torch.testing.assert_close(fast(x), model(x))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    model(x).pow(2).sum().backward()
    opt.step()
    torch.testing.assert_close(fast(x), model(x))
    assert fast.compiled.cache_size() == 1


def test_jit_writes_back_input_and_captured_mutation():
    counter = torch.zeros(())

    def f(x):
        counter.add_(1)
        x.mul_(2)
        return x + counter

    x = torch.ones(3)
    out = torchjax.jit(f)(x)
    torch.testing.assert_close(x, torch.full((3,), 2.0))
    torch.testing.assert_close(counter, torch.tensor(1.0))
    torch.testing.assert_close(out, torch.full((3,), 3.0))
    torchjax.jit(f)(x)
    torch.testing.assert_close(counter, torch.tensor(2.0))


def test_view_write_changes_base():
    def f(x):
        y = x.clone()
        y.view(-1)[0] = 100.0
        y[1].mul_(0)
        return y

    x = torch.arange(6.0).reshape(3, 2)
    torch.testing.assert_close(torchjax.jit(f)(x), f(x))


def test_dtypes_preserved_inside_jit():
    f = torchjax.jit(lambda x, i: (x * 2, i + 1, x.sum()))
    x = torch.randn(3, dtype=torch.float64)
    i = torch.tensor([2**40], dtype=torch.int64)
    a, b, c = f(x, i)
    assert a.dtype == torch.float64 and b.dtype == torch.int64 and c.dtype == torch.float64
    assert b.item() == 2**40 + 1


def test_unsupported_op_names_overload_and_fix():
    torch.library.define("tjtest::mystery", "(Tensor x) -> Tensor")

    @torch.library.impl("tjtest::mystery", "CompositeExplicitAutograd")
    def _(x):
        return x + 1

    with pytest.raises(torchjax.UnsupportedOpError, match=r"tjtest::mystery\.default") as info:
        torchjax.jit(torch.ops.tjtest.mystery)(torch.ones(2))
    assert "register_op" in str(info.value)

    @torchjax.register_op(torch.ops.tjtest.mystery.default)
    def mystery(x):
        return x + 1

    torch.testing.assert_close(torchjax.jit(torch.ops.tjtest.mystery)(torch.ones(2)), torch.full((2,), 2.0))


def test_duplicate_registration_raises():
    with pytest.raises(ValueError, match="already has the rule"):
        register(torch.ops.aten.sin.default)(lambda x: x)
    with pytest.raises(TypeError, match="name the overloads"):
        register(torch.ops.aten.sin)


def test_data_dependent_control_flow_error_points_at_user_line():
    def f(x):
        if x.sum() > 0:  # the offending line
            return x
        return -x

    with pytest.raises(torchjax.TracingError, match="the offending line"):
        torchjax.jit(f)(torch.ones(2))
    with torchjax.disable_jit():
        torch.testing.assert_close(torchjax.jit(f)(torch.ones(2)), torch.ones(2))


def test_disable_jit_is_per_thread_and_nests():
    seen = []
    with torchjax.disable_jit():
        with torchjax.disable_jit():
            assert jit_disabled()
        assert jit_disabled()
        worker = threading.Thread(target=lambda: seen.append(jit_disabled()))
        worker.start()
        worker.join()
    assert seen == [False] and not jit_disabled()


def test_recompile_storm_warns():
    f = torchjax.jit(lambda x, s: x * s)
    with pytest.warns(RuntimeWarning, match="compiled 8 times"):
        for s in range(10):
            f(torch.ones(2), float(s))


def test_cache_hits_for_same_signature():
    f = torchjax.jit(lambda x: x.sin())
    for _ in range(3):
        f(torch.randn(4))
    f(torch.randn(5))
    assert f.compiled.cache_size() == 2


def test_equal_python_scalars_of_different_types_compile_apart():
    # 1 == True == 1.0 in Python, but torch infers a different dtype from each.
    f = torchjax.jit(lambda x, s: torch.full(x.shape, s))
    x = torch.zeros(2)
    for s in (1, True, 1.0, 1, True):
        assert f(x, s).dtype == torch.full((2,), s).dtype  # int64, bool, float32
    assert f.compiled.cache_size() == 3


def test_keyword_and_positional_calls_compile_apart():
    def f(x, y=None, scale=1.0):
        return x * scale if y is None else (x - y) * scale

    jf = torchjax.jit(f)
    x, y = torch.ones(2), torch.full((2,), 3.0)
    for args, kwargs in [((x, y), {}), ((x,), {"y": y}), ((x, y), {"scale": 2.0}), ((x,), {"scale": 2.0})]:
        torch.testing.assert_close(jf(*args, **kwargs), f(*args, **kwargs))
    assert jf.compiled.cache_size() == 4


def test_dict_arguments_keep_insertion_order():
    f = torchjax.jit(lambda d: d["a"] - d["b"])
    a, b = torch.ones(2), torch.zeros(2)
    torch.testing.assert_close(f({"a": a, "b": b}), a - b)
    torch.testing.assert_close(f({"b": b, "a": a}), a - b)


def test_module_to_jax_params_buffers_apply():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    params, buffers, apply = torchjax.to_jax(model)
    assert set(params) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    x = torch.randn(5, 3)
    out, new_buffers = jax.jit(apply)(params, buffers, torchjax.to_jax_array(x))
    np.testing.assert_allclose(out, model(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    grads = jax.grad(lambda p: apply(p, buffers, torchjax.to_jax_array(x))[0].sum())(params)
    assert grads["0.weight"].shape == (4, 3)


def test_unsupported_op_error_names_module_path():
    torch.library.define("tjtest::odd", "(Tensor x) -> Tensor")

    @torch.library.impl("tjtest::odd", "CompositeExplicitAutograd")
    def _(x):
        return x

    class Inner(torch.nn.Module):
        def forward(self, x):
            return torch.ops.tjtest.odd(x)

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Sequential(Inner()))
    with pytest.raises(torchjax.UnsupportedOpError, match=r"called in module: 1\.0 \(Inner\)"):
        torchjax.jit(model)(torch.ones(2))


def test_global_read_by_a_called_function_is_not_baked_into_a_stale_program():
    ns: dict = {}
    exec(
        "k = 1.0\ndef f(x):\n    return (x * k).sum()\ndef outer(x):\n    return f(x) * 1.0\n",
        ns,
    )
    g = torchjax.func.grad(ns["outer"])
    x = torch.ones(3)
    assert g(x).tolist() == [1.0, 1.0, 1.0]
    ns["k"] = 2.0  # a Python number is a constant of the compiled program: a new key
    assert g(x).tolist() == [2.0, 2.0, 2.0]


def test_lambdas_recreated_in_a_loop_get_their_own_programs():
    x = torch.ones(3)
    got = []
    for k in (1.0, 2.0, 3.0, 4.0):
        f = lambda x, k=k: (x * k).sum()
        got.append(torchjax.func.grad(lambda x: f(x))(x)[0].item())
    assert got == [1.0, 2.0, 3.0, 4.0]


def test_size_outputs_stay_sizes_with_transformers_loaded():
    import transformers  # noqa: F401  (torchjax's HF cache conversion walks every output once it is loaded)

    f = torchjax.jit(lambda x: (x.shape, torch.broadcast_shapes(x.shape, (3, 1, 1)), torch.Size([])))
    got = f(torch.ones(2, 2))
    assert all(type(s) is torch.Size for s in got)
    assert got == (torch.Size([2, 2]), torch.Size([3, 2, 2]), torch.Size([]))
