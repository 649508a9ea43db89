"""Output buffer reuse: a large output the caller has dropped is written over by the next
call (no page faults for a fresh buffer); one the caller still reaches never is."""

from __future__ import annotations

import gc
import threading
import weakref

import numpy as np
import pytest
import torch

import torchjax
from torchjax._src.compile import SETTINGS, Settings, reuse
from torchjax._src.transforms import base

N = 64  # outputs of N x N x N float32: 1 MiB, over the threshold the fixture sets


@pytest.fixture(autouse=True)
def small_threshold():
    with SETTINGS.override(output_reuse_min_bytes=4096, output_reuse_budget=1 << 30):
        torchjax.clear_cache()  # functions of one code object share a cache: start each test afresh
        yield


def _outer():
    return torchjax.func.vmap(lambda a, b: a[:, None] * b[None, :] + 1.0, in_dims=(None, 0))


def _entry(fn):
    """The compiled entry of ``fn``'s latest new signature."""
    compiled = base._COMPILED.data[base.fn_key(fn).key]
    return list(compiled.hot.values())[-1][1]


def test_dropped_output_buffer_is_written_by_next_call():
    f = _outer()
    a, b = torch.randn(N), torch.randn(N, N)
    first_ptr = f(a, b).data_ptr()  # dropped at once
    second = f(a, b)  # the first buffer was free: written into
    assert second.data_ptr() == first_ptr
    third_in = torch.randn(N, N)
    third = f(a, third_in)
    assert third.data_ptr() != second.data_ptr()  # second is still held
    torch.testing.assert_close(second, torch.func.vmap(lambda x, y: x[:, None] * y[None, :] + 1.0, (None, 0))(a, b))
    torch.testing.assert_close(third, a[None, :, None] * third_in[:, None, :] + 1.0)
    freed_ptr = third.data_ptr()
    del third  # kept: [second (held), third (free)]
    fourth = f(a, b)
    assert fourth.data_ptr() == freed_ptr  # the free one of the two
    torch.testing.assert_close(fourth, second)
    assert _entry(f).reuse.donating is not None


def _as_tensor(x):
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


# (how the caller keeps the output, how to read it back, which part of it that is)
KEEPS = {
    "tensor": (lambda t: t, lambda h: h, lambda e: e),
    "view": (lambda t: t[3], lambda h: h, lambda e: e[3]),
    "nested-view": (lambda t: [t.view(-1)[5:]], lambda h: h[0], lambda e: e.reshape(-1)[5:]),
    "numpy": (lambda t: t.numpy(), _as_tensor, lambda e: e),
    "storage": (
        lambda t: t.untyped_storage(),
        lambda h: torch.tensor([]).set_(h).view(N, N, N),
        lambda e: e,
    ),
    "dlpack": (torch.utils.dlpack.to_dlpack, torch.from_dlpack, lambda e: e),
    "jax": (torchjax.to_jax_array, _as_tensor, lambda e: e),
}


@pytest.mark.parametrize("how", list(KEEPS))
def test_output_reachable_in_any_way_is_never_written(how):
    keep, read, pick = KEEPS[how]
    f = _outer()
    a, b = torch.randn(N), torch.randn(N, N)
    out = f(a, b)
    expected = out.clone()
    ptr = out.data_ptr()
    held = keep(out)
    del out
    later = [f(torch.randn(N), torch.randn(N, N)).data_ptr() for _ in range(4)]  # each dropped at once
    assert ptr not in later
    assert _entry(f).reuse.donating is not None  # the later calls did reuse buffers
    torch.testing.assert_close(read(held), pick(expected))


def test_input_passed_through_is_never_reused():
    f = torchjax.func.vmap(lambda x, s: (x, x * s), in_dims=(0, None))
    x = torch.randn(N, N)
    before = x.clone()
    for _ in range(4):
        same, _ = f(x, torch.tensor(2.0))
        del same
    torch.testing.assert_close(x, before)
    assert _entry(f).reuse.positions == (1,)


def test_output_fed_back_as_input():
    f = torchjax.func.grad(lambda w: (w.sin() ** 2).sum())
    w = torch.randn(N, N, dtype=torch.float64)
    ref = w
    for _ in range(5):
        w = w - 0.1 * f(w)  # the gradient is dropped after use
        ref = ref - 0.1 * torch.func.grad(lambda w: (w.sin() ** 2).sum())(ref)
    torch.testing.assert_close(w, ref)

    g = torchjax.func.vmap(lambda x: x * 2.0 + 1.0)
    y = torch.randn(N, N)
    expected = y.clone()
    for _ in range(5):
        y = g(y)  # the previous result is the input: held while the call runs
        expected = expected * 2.0 + 1.0
    torch.testing.assert_close(y, expected)


def test_vjp_residuals_stay_while_the_vjp_function_lives():
    def f(x):
        return x.exp() * 3.0

    fns = []
    xs = [torch.randn(N, N) for _ in range(3)]
    for x in xs:
        _, vjp_fn = torchjax.func.vjp(f, x)
        fns.append(vjp_fn)
    ones = torch.ones(N, N)
    for x, vjp_fn in zip(xs, fns):
        (g,) = vjp_fn(ones)
        torch.testing.assert_close(g, x.exp() * 3.0)


def test_budget_limits_what_is_kept():
    f = _outer()
    a, b = torch.randn(N), torch.randn(N, N)
    with SETTINGS.override(output_reuse_budget=N**3 * 4 - 1):  # less than one output
        for _ in range(3):
            f(a, b)
    kept = _entry(f).reuse
    assert kept.kept == {} and kept.kept_bytes == 0 and kept.donating is None


def test_threads_calling_at_once_get_their_own_results():
    f = _outer()
    a = torch.randn(N)
    f(a, torch.randn(N, N))
    errors = []

    def work(seed):
        gen = torch.Generator().manual_seed(seed)
        for _ in range(20):
            b = torch.randn(N, N, generator=gen)
            out = f(a, b)
            if not torch.allclose(out, a[None, :, None] * b[:, None, :] + 1.0, atol=1e-5):
                errors.append(seed)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_default_threshold():
    assert Settings().output_reuse_min_bytes == 16 << 20
    with SETTINGS.override(output_reuse_min_bytes=Settings().output_reuse_min_bytes):
        f = _outer()
        f(torch.randn(N), torch.randn(N, N))  # 1 MiB: not worth a kept buffer
        assert _entry(f).reuse is None
        g = _outer()
        a, b = torch.randn(1024), torch.randn(5, 1024)  # 20 MiB
        ptr = g(a, b).data_ptr()
        out = g(a, b)
    assert _entry(g).reuse.positions == (0,) and out.data_ptr() == ptr
    torch.testing.assert_close(out, a[None, :, None] * b[:, None, :] + 1.0)


def test_settings_from_environment():
    assert Settings.from_environment({"TORCHJAX_OUTPUT_REUSE_MB": "0"}).output_reuse_budget == 0
    assert Settings.from_environment({"TORCHJAX_OUTPUT_REUSE_MB": "1.5"}).output_reuse_budget == 3 << 19
    assert Settings.from_environment({}).output_reuse_budget > 0  # a share of physical memory
    with pytest.raises(ValueError, match="TORCHJAX_OUTPUT_REUSE_MB"):
        Settings.from_environment({"TORCHJAX_OUTPUT_REUSE_MB": "lots"})
    assert Settings.from_environment({"TORCHJAX_DISABLE_JIT": "1"}).disable_jit
    assert not Settings.from_environment({"TORCHJAX_DISABLE_JIT": "0"}).disable_jit


def test_settings_override_restores_and_rejects_unknown_names():
    before = SETTINGS.output_reuse_budget
    with SETTINGS.override(output_reuse_budget=7):
        assert SETTINGS.output_reuse_budget == 7
    assert SETTINGS.output_reuse_budget == before
    with pytest.raises(TypeError, match="no setting named 'reuse_budget'"):
        with SETTINGS.override(reuse_budget=7):
            pass


def test_reuse_off_in_settings_keeps_nothing():
    f = _outer()
    with SETTINGS.override(output_reuse_budget=0):
        f(torch.randn(N), torch.randn(N, N))
    assert _entry(f).reuse is None


def test_clear_cache_releases_kept_buffers():
    f = _outer()
    f(torch.randn(N), torch.randn(N, N))
    kept = [weakref.ref(a) for slot in _entry(f).reuse.kept.values() for a, _ in slot]
    assert kept and all(r() is not None for r in kept)
    torchjax.clear_cache()
    gc.collect()
    assert all(r() is None for r in kept)


def test_jit_reuses_and_to_jax_hands_its_arrays_over():
    def outer(a, b):
        return a[:, None] * b[None, :]

    a, b = torch.randn(N * N), torch.randn(N)
    fast = torchjax.jit(outer)
    ptr = fast(a, b).data_ptr()
    out = fast(a, b)
    assert out.data_ptr() == ptr
    torch.testing.assert_close(out, outer(a, b))

    pure = torchjax.to_jax(outer)
    ja, jb = torchjax.to_jax_array((a, b))
    first = pure(ja, jb)
    for _ in range(3):
        pure(ja, jb)
    (entry,) = pure.compiled._cache.values()
    assert entry.reuse is None
    torch.testing.assert_close(torchjax.to_torch(first), outer(a, b))


def test_reuse_that_does_not_compile_warns_and_the_call_still_runs(monkeypatch):
    def broken(jaxpr):
        raise NotImplementedError("no donation here")

    monkeypatch.setattr(reuse.jax_core, "jaxpr_as_fun", broken)
    f = _outer()
    a, b = torch.randn(N), torch.randn(N, N)
    f(a, b)
    with pytest.warns(RuntimeWarning, match="will not reuse their buffers.*no donation here"):
        out = f(a, b)
    torch.testing.assert_close(out, a[None, :, None] * b[:, None, :] + 1.0)
    entry = _entry(f)
    assert entry.reuse is None
    torch.testing.assert_close(f(a, b), out)  # and no further attempt, no further warning
