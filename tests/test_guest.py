"""Importing and using torchjax leaves torch, torch.func, torch.compile and JAX as they were."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_import_changes_nothing_global():
    out = _run(
        """
        import jax, torch
        from torch.utils._python_dispatch import _get_current_dispatch_mode_stack
        before = (jax.config.jax_enable_x64, torch._C._get_privateuse1_backend_name(),
                  torch.get_default_dtype(), torch.is_grad_enabled(), len(_get_current_dispatch_mode_stack()))
        import torchjax, torchjax.func
        x = torch.randn(3)
        torchjax.func.grad(lambda x: (x ** 2).sum())(x)
        torchjax.jit(torch.sin)(x)
        after = (jax.config.jax_enable_x64, torch._C._get_privateuse1_backend_name(),
                 torch.get_default_dtype(), torch.is_grad_enabled(), len(_get_current_dispatch_mode_stack()))
        assert before == after, (before, after)
        print("ok")
        """
    )
    assert "ok" in out


def test_torch_func_and_compile_still_work():
    out = _run(
        """
        import torch, torchjax
        f = lambda x: (x.sin() ** 2).sum()
        x = torch.randn(5)
        g = torch.func.grad(f)(x)
        assert torch.allclose(g, 2 * x.sin() * x.cos())
        assert torch.allclose(torch.func.vmap(torch.sin)(x), x.sin())
        c = torch.compile(lambda x: x * 2 + 1, backend="eager")
        assert torch.equal(c(x), x * 2 + 1)
        y = x.clone().requires_grad_()
        (y ** 2).sum().backward()
        assert torch.allclose(y.grad, 2 * x)
        print("ok")
        """
    )
    assert "ok" in out


def test_user_jax_code_unaffected():
    out = _run(
        """
        import jax, jax.numpy as jnp, torch, torchjax
        torchjax.func.grad(lambda x: x.sum())(torch.ones(2, dtype=torch.float64))
        assert jnp.ones(2).dtype == jnp.float32
        assert jnp.arange(3).dtype == jnp.int32
        assert jax.jit(lambda x: x * 2)(jnp.ones(2)).dtype == jnp.float32
        print("ok")
        """
    )
    assert "ok" in out
