"""Running one OpInfo's samples through torchjax and torch; shared by the op tests."""

from __future__ import annotations

import contextlib
import os

import pytest
import torch
from torch.testing._internal.common_device_type import onlyCUDA
from torch.testing._internal.common_methods_invocations import op_db
from torch.utils import _pytree as pytree

import torchjax

FULL = os.environ.get("TORCHJAX_OPINFO_FULL", "") not in ("", "0")
MAX_SAMPLES = 10_000 if FULL else 2
# The default run compiles with XLA the first sample of each op in float32 forward and
# under grad and vmap, and checks every other sample op by op (torchjax.disable_jit):
# the same rules and dtypes, without an XLA compile per sample, which would not fit the
# test budget. The full run (make test-ops-full) compiles every sample.
JIT_SAMPLES = 10_000 if FULL else 1
# float64, int64, bool, bfloat16 and complex64 forward check the first sample only (op by
# op): the same rules as float32 with another dtype, which is what those checks are for.
OTHER_DTYPE_SAMPLES = 10_000 if FULL else 1
# vmap checks the first sample only (compiled): the second, op by op under vmap, took
# over 2 of the suite's ~15 minutes for what forward and grad already cover per sample.
VMAP_SAMPLES = 10_000 if FULL else 1

RANDOM_OPS = {
    "bernoulli", "cauchy", "exponential", "geometric", "log_normal", "normal", "uniform",
    "randn", "randn_like", "rand_like", "randint", "randint_like", "multinomial",
    "nn.functional.dropout", "nn.functional.dropout2d", "nn.functional.dropout3d",
    "nn.functional.alpha_dropout", "nn.functional.feature_alpha_dropout", "torch._C._nn.rrelu",
    "nn.functional.rrelu",
}  # fmt: skip
# torch returns uninitialised memory: only shape and dtype can be compared
UNINITIALIZED_OPS = {"empty", "empty_like", "empty_strided", "empty_permuted", "new_empty", "new_empty_strided"}
VALUE_FREE_OPS = RANDOM_OPS | UNINITIALIZED_OPS

# torch's own tolerances (OpInfo tests) are tighter for float64; XLA's transcendental
# functions differ from torch's in the last bits of float32.
TOLERANCES = {
    torch.float32: dict(rtol=1.3e-5, atol=1e-5),
    torch.float64: dict(rtol=1e-7, atol=1e-7),
    torch.bfloat16: dict(rtol=1.6e-2, atol=1e-2),
    torch.float16: dict(rtol=1e-3, atol=1e-3),
    torch.complex64: dict(rtol=1.3e-5, atol=1e-5),  # as float32
}


def op_id(op) -> str:
    return op.name + (f".{op.variant_test_name}" if op.variant_test_name else "")


def _runs_on_cpu(op) -> bool:
    # OpInfos marked onlyCUDA (the jiterator ops, among others) are not run on CPU by
    # torch's own suite either: torch eager itself cannot execute them there.
    return not any(d is onlyCUDA for d in op.decorators)


OPS = {op_id(op): op for op in op_db if _runs_on_cpu(op)}


def samples(op, dtype, requires_grad=False, jit_first: bool = True, limit: int = MAX_SAMPLES):
    """The capped samples, each with the context to run it in (jit or op by op)."""
    out = []
    n_jit = JIT_SAMPLES if (jit_first or FULL) else 0
    for s in op.sample_inputs("cpu", dtype, requires_grad=requires_grad):
        mode = contextlib.nullcontext() if len(out) < n_jit else torchjax.disable_jit()
        out.append((s, mode))
        if len(out) >= limit:
            break
    return out


def _call(op, sample):
    return op(sample.input, *sample.args, **sample.kwargs)


def _check_random(actual, expected):
    a_leaves, a_spec = pytree.tree_flatten(actual)
    e_leaves, e_spec = pytree.tree_flatten(expected)
    assert a_spec == e_spec, (a_spec, e_spec)
    for a, e in zip(a_leaves, e_leaves):
        if isinstance(e, torch.Tensor):
            assert a.shape == e.shape and a.dtype == e.dtype, (a.shape, a.dtype, e.shape, e.dtype)
            if a.is_floating_point() and a.numel():
                assert torch.isfinite(a).all() or not torch.isfinite(e).all()


def _compare(op, actual, expected, tol) -> None:
    """Values for deterministic ops; shape and dtype only for random or uninitialised ones."""
    if op.name in VALUE_FREE_OPS:
        _check_random(actual, expected)
    else:
        torchjax.testing.assert_close_tree(actual, expected, **tol)


def check_forward(op, dtype) -> int:
    """Compare every capped sample of ``op`` in ``dtype``; returns how many were checked."""
    tol = TOLERANCES.get(dtype, {})
    checked = 0
    f32 = dtype == torch.float32
    for sample, mode in samples(op, dtype, jit_first=f32, limit=MAX_SAMPLES if f32 else OTHER_DTYPE_SAMPLES):
        expected = _call(op, sample)
        fn = torchjax.jit(lambda inp, *args, **kwargs: op(inp, *args, **kwargs))
        with mode:
            actual = fn(sample.input, *sample.args, **sample.kwargs)
        _compare(op, actual, expected, tol)
        checked += 1
    return checked


def _float_leaves(sample):
    leaves, spec = pytree.tree_flatten((sample.input, sample.args, sample.kwargs))
    idx = [i for i, x in enumerate(leaves) if isinstance(x, torch.Tensor) and (x.is_floating_point() or x.is_complex())]
    return leaves, spec, idx


def _diff_function(op, leaves, spec, idx):
    def f(*diffs):
        full = list(leaves)
        for i, d in zip(idx, diffs):
            full[i] = d
        inp, args, kwargs = pytree.tree_unflatten(full, spec)
        out = op(inp, *args, **kwargs)
        return tuple(
            x
            for x in pytree.tree_leaves(out)
            if isinstance(x, torch.Tensor) and (x.is_floating_point() or x.is_complex())
        )

    return f


def check_grad(op, dtype) -> int:
    """vjp of every differentiable output w.r.t. every floating input, against torch.func.vjp."""
    import torch.func as tf

    import torchjax.func as jf

    tol = TOLERANCES.get(dtype, {})
    checked = 0
    reference_errors: list[str] = []
    for sample, mode in samples(op, dtype):
        leaves, spec, idx = _float_leaves(sample)
        if not idx:
            continue
        f = _diff_function(op, leaves, spec, idx)
        primals = [leaves[i].detach() for i in idx]
        try:
            expected_out, expected_fn = tf.vjp(f, *primals)
            if not expected_out:
                continue
            cts = tuple(torch.ones_like(o) for o in expected_out)
            expected = expected_fn(cts)
        except Exception as e:  # torch.func itself cannot differentiate this sample
            reference_errors.append(f"{type(e).__name__}: {str(e).splitlines()[0][:160]}")
            continue
        with mode:
            actual_out, actual_fn = jf.vjp(f, *primals)
            actual = actual_fn(cts)
        _compare(op, actual_out, expected_out, tol)
        _compare(op, actual, expected, tol)
        checked += 1
    if not checked and reference_errors:
        # Not a torchjax gap: the reference has nothing to compare with (e.g. torch has no
        # derivative for this op, or not for these inputs).
        pytest.skip(f"torch.func cannot differentiate any sample: {reference_errors[0]}")
    return checked


def _second_batch_member(x: torch.Tensor) -> torch.Tensor:
    # The same values in other places: keeps every op's input domain, but a batching
    # rule that mixes up batch members gives a different answer.
    return x.flip(tuple(range(x.dim()))) if x.dim() else x


def check_vmap(op, dtype) -> int:
    """vmap over the first tensor input (batch of 2), against torch.func.vmap."""
    import torch.func as tf

    import torchjax.func as jf

    tol = TOLERANCES.get(dtype, {})
    checked = 0
    for sample, mode in samples(op, dtype, limit=VMAP_SAMPLES):
        if not isinstance(sample.input, torch.Tensor):
            continue
        x = sample.input.detach()
        batched = torch.stack([x, _second_batch_member(x)])

        def f(inp, args=sample.args, kwargs=sample.kwargs):
            return op(inp, *args, **kwargs)

        try:
            expected = tf.vmap(f)(batched)
        except Exception:  # torch.func itself cannot vmap this sample: nothing to compare
            continue
        with mode:
            actual = jf.vmap(f)(batched)
        _compare(op, actual, expected, tol)
        checked += 1
    return checked
