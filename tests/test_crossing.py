"""torch <-> JAX crossing: zero-copy pointers, every dtype unchanged, odd layouts."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import torchjax

ALL_DTYPES = [
    torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64, torch.complex128,
    torch.bool, torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8,
]  # fmt: skip


def _sample(dtype, shape=(3, 5)):
    if dtype == torch.bool:
        return torch.rand(shape) > 0.5
    if dtype.is_complex:
        return torch.randn(shape, dtype=dtype)
    if dtype.is_floating_point:
        return torch.randn(shape).to(dtype)
    info = torch.iinfo(dtype)
    return torch.randint(max(info.min, -1000), min(info.max, 1000), shape, dtype=dtype)


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_round_trip_keeps_dtype_and_values(dtype):
    t = _sample(dtype)
    a = torchjax.to_jax_array(t)
    assert a.dtype == torchjax._src.dtypes.to_jax_dtype(dtype)
    back = torchjax.to_torch(a)
    assert back.dtype == dtype
    assert torch.equal(back, t)


def test_int64_and_float64_not_downcast_with_x64_off():
    assert not jax.config.jax_enable_x64
    assert torchjax.to_jax_array(torch.tensor([2**40], dtype=torch.int64)).dtype == jnp.int64
    a = torchjax.to_jax_array(torch.tensor([1 + 1e-12], dtype=torch.float64))
    assert a.dtype == jnp.float64
    with jax.enable_x64(True):
        assert float(a[0]) == 1 + 1e-12
    assert not jax.config.jax_enable_x64


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.int32, torch.uint8], ids=str)
def test_zero_copy_both_directions(dtype):
    t = _sample(dtype, (64, 16))
    a = torchjax.to_jax_array(t)
    assert a.unsafe_buffer_pointer() == t.data_ptr()
    back = torchjax.to_torch(a)
    assert back.data_ptr() == a.unsafe_buffer_pointer()


def test_requires_grad_tensor_crosses_detached():
    p = torch.nn.Parameter(torch.randn(4, 4))
    a = torchjax.to_jax_array(p)
    assert a.unsafe_buffer_pointer() == p.data_ptr()
    np.testing.assert_array_equal(np.asarray(a), p.detach().numpy())


def test_non_contiguous_tensor_is_copied_correctly():
    t = torch.randn(6, 8).t()
    assert not t.is_contiguous()
    a = torchjax.to_jax_array(t)
    np.testing.assert_array_equal(np.asarray(a), t.numpy())
    sliced = torch.arange(20.0)[::3]
    np.testing.assert_array_equal(np.asarray(torchjax.to_jax_array(sliced)), sliced.numpy())


def test_misaligned_tensor_is_copied_correctly():
    base = torch.arange(33, dtype=torch.float32)
    t = base[1:]  # 4-byte offset: not 16-byte aligned
    assert t.data_ptr() % 16
    a = torchjax.to_jax_array(t)
    np.testing.assert_array_equal(np.asarray(a), t.numpy())


def test_conj_and_neg_views_are_resolved():
    z = torch.randn(4, dtype=torch.complex64)
    np.testing.assert_allclose(np.asarray(torchjax.to_jax_array(z.conj())), z.conj().resolve_conj().numpy())


def test_pytrees_cross():
    tree = {"a": torch.ones(2), "b": [torch.zeros(3, dtype=torch.int64), 5, None]}
    out = torchjax.to_jax_array(tree)
    assert isinstance(out["a"], jax.Array) and out["b"][1] == 5 and out["b"][2] is None
    assert out["b"][0].dtype == jnp.int64
    back = torchjax.to_torch(out)
    assert back["b"][0].dtype == torch.int64 and torch.equal(back["a"], tree["a"])


def test_empty_and_scalar_tensors():
    for t in (torch.empty(0, 3), torch.tensor(3.5), torch.tensor(7, dtype=torch.int64)):
        back = torchjax.to_torch(torchjax.to_jax_array(t))
        assert back.shape == t.shape and back.dtype == t.dtype and torch.equal(back, t)


def test_bad_input_is_named():
    with pytest.raises(TypeError, match=r"expected a torch\.Tensor"):
        torchjax._src.crossing.tensor_to_jax([1, 2])


def test_repeated_crossing_reuses_the_array_until_the_tensor_changes():
    t = torch.ones(4)
    a = torchjax.to_jax_array(t)
    assert torchjax.to_jax_array(t) is a  # unchanged: not crossed again
    t.add_(1)  # bumps the version counter
    b = torchjax.to_jax_array(t)
    assert b is not a and float(b[0]) == 2.0
    b.delete()  # e.g. donated to a jitted step
    c = torchjax.to_jax_array(t)
    assert not c.is_deleted() and float(c[0]) == 2.0


def _square_sum(x):
    return (x * x).sum()


@pytest.mark.parametrize("change", ["add_", "copy_", "data", "set_"])
def test_an_argument_passed_again_is_read_afresh_after_a_change(change):
    # From its second call on, a tensor passed again at the same position goes through
    # the crossing cache: whatever changed it must still be seen.
    grad = torchjax.func.grad(_square_sum)
    x = torch.ones(4)
    for _ in range(3):
        torch.testing.assert_close(grad(x), 2 * x)
    if change == "add_":
        x.add_(1)
    elif change == "copy_":
        x.copy_(torch.arange(4.0))
    elif change == "data":
        x.data = torch.full((4,), 5.0)
    else:
        x.set_(torch.full((6,), 3.0))
    torch.testing.assert_close(grad(x), 2 * x)


def test_an_argument_written_by_the_call_is_read_afresh_next_call():
    def bump(x):
        x.add_(1)
        return x.sum()

    f = torchjax.func.functionalize(bump)
    x = torch.zeros(3)
    sums = [float(f(x)) for _ in range(4)]
    assert sums == [3.0, 6.0, 9.0, 12.0] and x.tolist() == [4.0, 4.0, 4.0]


def test_a_float64_program_keeps_float64_inputs_with_x64_off():
    assert not jax.config.jax_enable_x64
    grad = torchjax.func.grad(_square_sum)
    x = torch.randn(5, dtype=torch.float64)
    for _ in range(3):  # first call, a new NumPy view, then the crossing cache
        out = grad(x)
        assert out.dtype == torch.float64
        torch.testing.assert_close(out, 2 * x, rtol=1e-15, atol=0)
