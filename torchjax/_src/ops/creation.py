"""Tensor factories: ``empty``/``zeros``/``full`` and their ``_like``/``new_`` forms, ranges, ``eye``.

Factories ignore ``layout``, ``device``, ``pin_memory`` and ``memory_format`` (a JAX
array has one layout, and placement is JAX's business) but honour ``dtype`` exactly
as torch infers it. ``empty`` returns zeros: JAX has no uninitialised memory, and
code that reads ``empty`` before writing it is already wrong in torch.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from jax import lax

from .. import dtypes
from ..registry import aten, register
from ._common import jdtype

# --------------------------------------------------------------------------- dtypes


def _float_dtype(dtype):
    """``dtype`` as a JAX dtype; torch's default float when it is ``None``."""
    return dtypes.default_float() if dtype is None else jdtype(dtype)


def _like_dtype(self, dtype):
    """``dtype`` as a JAX dtype; ``self``'s when it is ``None`` (``*_like``, ``new_*``)."""
    return self.dtype if dtype is None else jdtype(dtype)


def _scalar_dtype(value):
    """The dtype torch infers for a tensor filled with the Python scalar ``value``."""
    if isinstance(value, bool):
        return jnp.dtype(jnp.bool_)
    if isinstance(value, int):
        return jnp.dtype(jnp.int64)
    if isinstance(value, complex):
        return dtypes.default_complex()
    return dtypes.default_float()


def _filled(shape, value, dtype):
    # jnp.full casts a Python float to a JAX dtype the way torch casts a Scalar
    return jnp.full(tuple(shape), value, dtype)


# --------------------------------------------------------------------------- empty / zeros / ones / full


@register(*aten("empty", "memory_format"))
def empty(size, *, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    return jnp.zeros(tuple(size), _float_dtype(dtype))


@register(*aten("empty_strided"))
def empty_strided(size, stride, *, dtype=None, layout=None, device=None, pin_memory=None):
    return jnp.zeros(tuple(size), _float_dtype(dtype))


@register(*aten("empty_permuted"))
def empty_permuted(size, physical_layout, *, dtype=None, layout=None, device=None, pin_memory=None):
    return jnp.zeros(tuple(size), _float_dtype(dtype))


@register(*aten("zeros"))
def zeros(size, *, dtype=None, layout=None, device=None, pin_memory=None):
    return jnp.zeros(tuple(size), _float_dtype(dtype))


@register(*aten("ones"))
def ones(size, *, dtype=None, layout=None, device=None, pin_memory=None):
    return jnp.ones(tuple(size), _float_dtype(dtype))


@register(*aten("full"))
def full(size, fill_value, *, dtype=None, layout=None, device=None, pin_memory=None):
    return _filled(size, fill_value, _scalar_dtype(fill_value) if dtype is None else jdtype(dtype))


@register(*aten("scalar_tensor"))
def scalar_tensor(s, *, dtype=None, layout=None, device=None, pin_memory=None):
    return _filled((), s, _float_dtype(dtype))


# ``*_like``: the shape and (by default) dtype of ``self``


@register(*aten("empty_like"), *aten("zeros_like"))
def zeros_like(self, *, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    return jnp.zeros(self.shape, _like_dtype(self, dtype))


@register(*aten("ones_like"))
def ones_like(self, *, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    return jnp.ones(self.shape, _like_dtype(self, dtype))


@register(*aten("full_like"))
def full_like(self, fill_value, *, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    return _filled(self.shape, fill_value, _like_dtype(self, dtype))


# ``new_*``: a new shape, the dtype of ``self``


@register(*aten("new_empty"), *aten("new_zeros"))
def new_zeros(self, size, *, dtype=None, layout=None, device=None, pin_memory=None):
    return jnp.zeros(tuple(size), _like_dtype(self, dtype))


@register(*aten("new_empty_strided"))
def new_empty_strided(self, size, stride, *, dtype=None, layout=None, device=None, pin_memory=None):
    return jnp.zeros(tuple(size), _like_dtype(self, dtype))


@register(*aten("new_ones"))
def new_ones(self, size, *, dtype=None, layout=None, device=None, pin_memory=None):
    return jnp.ones(tuple(size), _like_dtype(self, dtype))


@register(*aten("new_full"))
def new_full(self, size, fill_value, *, dtype=None, layout=None, device=None, pin_memory=None):
    return _filled(size, fill_value, _like_dtype(self, dtype))


# --------------------------------------------------------------------------- ranges


def _arange_dtype(start, end, step, dtype):
    if dtype is not None:
        return jdtype(dtype)
    if any(isinstance(x, float) for x in (start, end, step)):
        return dtypes.default_float()
    return jnp.dtype(jnp.int64)


def _arange_size(start, end, step, exact_int: bool) -> int:
    """torch's ``compute_arange_size``: exact arithmetic for int64 results, double for all others."""
    if step == 0:
        raise ValueError("step must be nonzero")
    if not (math.isfinite(start) and math.isfinite(end)):
        raise ValueError(f"unsupported range: {start} -> {end}")
    if (step > 0 and end < start) or (step < 0 and end > start):
        raise ValueError("upper bound and lower bound inconsistent with step sign")
    if exact_int:
        start, end, step = int(start), int(end), int(step)
        if step == 0:
            raise ValueError("step must be nonzero")
        return max(0, -((start - end) // step))
    return max(0, math.ceil((float(end) - float(start)) / float(step)))


@register(*aten("arange", "default", "start", "start_step"))
def arange(*args, dtype=None, layout=None, device=None, pin_memory=None):
    start, end, step = {1: lambda e: (0, e, 1), 2: lambda s, e: (s, e, 1), 3: lambda s, e, st: (s, e, st)}[len(args)](
        *args
    )
    out = _arange_dtype(start, end, step, dtype)
    integral = dtypes.is_integral(out)
    n = _arange_size(start, end, step, exact_int=out == jnp.int64)
    if integral:
        # torch truncates the bounds to integers before it steps through them
        return jnp.asarray(int(start) + int(step) * np.arange(n, dtype=np.int64), out)
    # torch accumulates in double on CPU, then rounds once to the result dtype
    return jnp.asarray(float(start) + float(step) * np.arange(n, dtype=np.float64), out)


def _spaced(start, end, steps: int, out, compute):
    """torch's linspace kernel: two halves stepped from either end, so both ends are exact.

    The bounds are first rounded to ``out`` (truncated, for an integer ``out``), then
    stepped in ``compute``.
    """
    start = jnp.asarray(start).astype(out).astype(compute)
    end = jnp.asarray(end).astype(out).astype(compute)
    if steps == 1:
        return start.reshape(1)
    step = (end - start) / (steps - 1)
    idx = jnp.arange(steps, dtype=step.dtype)
    halfway = steps // 2
    return jnp.where(idx < halfway, start + step * idx, end - step * (steps - idx - 1))


@register(*aten("linspace", "default", "Tensor_Tensor", "Tensor_Scalar", "Scalar_Tensor"))
def linspace(start, end, steps, *, dtype=None, layout=None, device=None, pin_memory=None):
    if steps < 0:
        raise RuntimeError("number of steps must be non-negative")
    out = _float_dtype(dtype)
    if steps == 0:
        return jnp.zeros((0,), out)
    # torch steps an integer result in double, a floating one in its own dtype
    compute = jnp.float64 if dtypes.is_integral(out) else out
    return _spaced(start, end, steps, out, compute).astype(out)


@register(*aten("logspace", "default", "Tensor_Tensor", "Tensor_Scalar", "Scalar_Tensor"))
def logspace(start, end, steps, base=10.0, *, dtype=None, layout=None, device=None, pin_memory=None):
    if steps < 0:
        raise RuntimeError("number of steps must be non-negative")
    out = _float_dtype(dtype)
    if steps == 0:
        return jnp.zeros((0,), out)
    # torch's logspace kernel steps the exponent, and raises the base, in double
    exponent = _spaced(start, end, steps, out, jnp.float64)
    return jnp.power(jnp.float64(base), exponent).astype(out)


@register(*aten("eye", "default", "m"))
def eye(n, m=None, *, dtype=None, layout=None, device=None, pin_memory=None):
    return jnp.eye(n, n if m is None else m, dtype=_float_dtype(dtype))


def _tri_indices(row: int, col: int, offset: int, dtype, upper: bool):
    # the mask is static (Python ints), so the indices are a constant
    i, j = np.indices((row, col))
    mask = (j - i >= offset) if upper else (j - i <= offset)
    return jnp.asarray(np.stack([i[mask], j[mask]]), jdtype(dtype) if dtype is not None else jnp.int64)


@register(*aten("tril_indices"))
def tril_indices(row, col, offset=0, *, dtype=None, layout=None, device=None, pin_memory=None):
    return _tri_indices(row, col, offset, dtype, upper=False)


@register(*aten("triu_indices"))
def triu_indices(row, col, offset=0, *, dtype=None, layout=None, device=None, pin_memory=None):
    return _tri_indices(row, col, offset, dtype, upper=True)


# --------------------------------------------------------------------------- complex


# lax.complex, not ``re + 1j * im``: 1j * inf would put a NaN in the real part


@register(*aten("complex"))
def complex_(real, imag):
    return lax.complex(*jnp.broadcast_arrays(real, imag))


@register(*aten("polar"))
def polar(abs, angle):
    return lax.complex(abs * jnp.cos(angle), abs * jnp.sin(angle))
