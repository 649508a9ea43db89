"""One registry of caches: ``caches.clear_all()`` empties every module-level cache and the
caches of every ``torchjax.jit``/``to_jax``/``from_jax`` function, and holds nothing alive."""

from __future__ import annotations

import gc
import weakref

import jax.numpy as jnp
import torch

import torchjax
from torchjax._src import caches
from torchjax._src.compile import SETTINGS
from torchjax._src.compile.signature import _SPECS
from torchjax._src.crossing import crossing_cache


def test_module_level_caches_are_registered():
    assert {"compile.tree_specs", "compile.output_buffers", "crossing.arrays"} <= set(caches.names())


def test_jit_and_to_jax_functions_trace_again_after_clear_all():
    traces = {"jit": 0, "to_jax": 0}
    weight = torch.full((3,), 2.0)

    def traced_as(name):
        def f(x):
            traces[name] += 1
            return x * weight

        return f

    fast, pure = torchjax.jit(traced_as("jit")), torchjax.to_jax(traced_as("to_jax"))
    x = torch.ones(3)
    torch.testing.assert_close(fast(x), x * weight)
    pure(jnp.ones(3))
    first = dict(traces)  # (a captured tensor met while tracing makes a second trace)
    assert first["jit"] > 0 and first["to_jax"] > 0
    fast(x)
    pure(jnp.ones(3))
    assert traces == first
    caches.clear_all()
    torch.testing.assert_close(fast(x), x * weight)
    pure(jnp.ones(3))
    assert traces["jit"] > first["jit"] and traces["to_jax"] > first["to_jax"]
    weight.add_(1)  # the captured tensor is read afresh: nothing stale survives a clear
    torch.testing.assert_close(fast(x), x * weight)


def test_from_jax_functions_trace_again_after_clear_all():
    traces = []

    def g(x):
        traces.append(1)
        return jnp.sin(x)

    f = torchjax.from_jax(g)
    x = torch.ones(3)
    f(x)
    f(x)
    assert len(traces) == 1
    caches.clear_all()
    torch.testing.assert_close(f(x), torch.sin(x))
    assert len(traces) == 2


def test_clear_all_empties_the_output_buffer_pool():
    a, b = torch.randn(64 * 64), torch.randn(64)
    with SETTINGS.override(output_reuse_min_bytes=4096, output_reuse_budget=1 << 30):
        fast = torchjax.jit(lambda a, b: a[:, None] * b[None, :])
        fast(a, b)  # dropped at once: its buffer is kept for the next call
        (entry,) = fast.compiled._cache.values()
    kept = [weakref.ref(array) for pairs in entry.reuse.kept.values() for array, _ in pairs]
    assert kept and all(r() is not None for r in kept)
    caches.clear_all()
    gc.collect()
    assert entry.reuse.kept == {} and entry.reuse.kept_bytes == 0
    assert all(r() is None for r in kept)


def test_clear_all_empties_the_crossing_cache_and_tree_specs():
    t = torch.ones(4)
    crossing_cache.get(t)
    torchjax.jit(lambda d: d["x"] + 1)({"x": t})
    assert id(t) in crossing_cache._entries and _SPECS
    caches.clear_all()
    assert not crossing_cache._entries and not _SPECS


def test_registering_keeps_nothing_alive():
    x = torch.ones(3)
    fns = [torchjax.jit(lambda x: x + 1), torchjax.to_jax(lambda x: x + 1), torchjax.from_jax(lambda x: x + 1)]
    fns[0](x)
    fns[1](jnp.ones(3))
    fns[2](x)
    refs = [weakref.ref(f) for f in fns]
    del fns
    gc.collect()
    assert [r() for r in refs] == [None, None, None]
    caches.clear_all()  # the registry's dead owners are skipped
