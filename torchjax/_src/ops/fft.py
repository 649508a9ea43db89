"""FFT rules: the three primitives torch.fft lowers to (``_fft_r2c``, ``_fft_c2r``, ``_fft_c2c``)."""

from __future__ import annotations

import math

import jax.numpy as jnp

from ..registry import aten, register

# torch's fft_norm_mode: 0 = no scaling, 1 = 1/sqrt(n), 2 = 1/n (n: product of the transformed sizes)


def _scale(x, normalization: int, n: int):
    if normalization == 0 or n == 0:
        return x
    factor = 1.0 / math.sqrt(n) if normalization == 1 else 1.0 / n
    return x * jnp.asarray(factor, dtype=jnp.real(x).dtype)


def _complex_of(dtype):
    return jnp.complex128 if dtype == jnp.float64 else jnp.complex64


@register(*aten("_fft_r2c"))
def _fft_r2c(x, dim, normalization, onesided):
    dims = tuple(dim)
    n = math.prod(x.shape[d] for d in dims)
    out = jnp.fft.rfftn(x, axes=dims) if onesided else jnp.fft.fftn(x, axes=dims)
    return _scale(out.astype(_complex_of(x.dtype)), normalization, n)


@register(*aten("_fft_c2r"))
def _fft_c2r(x, dim, normalization, last_dim_size):
    dims = tuple(dim)
    sizes = [x.shape[d] for d in dims[:-1]] + [last_dim_size]
    out = jnp.fft.irfftn(x, s=sizes, axes=dims, norm="forward")  # unscaled inverse
    return _scale(out.astype(jnp.real(x).dtype), normalization, math.prod(sizes))


@register(*aten("_fft_c2c"))
def _fft_c2c(x, dim, normalization, forward):
    dims = tuple(dim)
    if not dims:
        return x
    n = math.prod(x.shape[d] for d in dims)
    out = jnp.fft.fftn(x, axes=dims) if forward else jnp.fft.ifftn(x, axes=dims, norm="forward")
    return _scale(out.astype(x.dtype), normalization, n)
