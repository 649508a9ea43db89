"""Shared pieces of the op rules: torch's type promotion, dtype policies, factories."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import torch
from jax import lax
from torch._prims_common import ELEMENTWISE_TYPE_PROMOTION_KIND as Kind
from torch._prims_common import elementwise_dtypes

from .. import dtypes
from ..registry import register

__all__ = [
    "Kind",
    "as_array",
    "canonical_dim",
    "canonical_dims",
    "conv_dimension_numbers",
    "conv_general",
    "jdtype",
    "pointwise",
    "promote",
    "register_pointwise",
]

# elementwise_dtypes reads only .dtype and .ndim of tensors, so one meta tensor per
# (dtype, is 0-d) stands for every array; built once, outside any capture.
_META: dict[tuple[torch.dtype, bool], torch.Tensor] = {}
for _dt in dtypes._TORCH_TO_JAX:
    _META[(_dt, True)] = torch.empty((), dtype=_dt, device="meta")
    _META[(_dt, False)] = torch.empty((1,), dtype=_dt, device="meta")


def _is_array(x) -> bool:
    return isinstance(x, (jax.Array, jax.core.Tracer))


def _stand_in(x):
    if _is_array(x):
        return _META[(dtypes.to_torch_dtype(x.dtype), x.ndim == 0)]
    return x


def promote(*args, kind: Kind = Kind.DEFAULT) -> tuple[jnp.dtype, jnp.dtype]:
    """torch's (computation dtype, result dtype) for an elementwise op on ``args``."""
    operands = [_stand_in(a) for a in args if a is not None]
    compute, result = elementwise_dtypes(*operands, type_promotion_kind=kind)
    return dtypes.to_jax_dtype(compute), dtypes.to_jax_dtype(result)


def jdtype(dtype: torch.dtype | None):
    return dtypes.to_jax_dtype(dtype)


def as_array(x, dtype=None):
    """An array for ``x`` (Python scalars become arrays of ``dtype``, exactly)."""
    if _is_array(x):
        return x if dtype is None or x.dtype == dtype else x.astype(dtype)
    return jnp.asarray(x, dtype=dtype)


def canonical_dim(dim: int, ndim: int) -> int:
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    return dim % n


def canonical_dims(dims, ndim: int) -> tuple[int, ...]:
    if dims is None:
        return tuple(range(ndim))
    if isinstance(dims, int):
        dims = (dims,)
    if len(dims) == 0:
        return tuple(range(ndim))
    return tuple(canonical_dim(d, ndim) for d in dims)


def pointwise(fn: Callable, kind: Kind = Kind.DEFAULT, n_tensors: int | None = None) -> Callable:
    """Wrap a jnp function of arrays with torch's promotion: cast in, compute, cast out.

    The first ``n_tensors`` positional arguments take part in promotion (all of them
    when ``None``); later ones are passed through unchanged.
    """

    @functools.wraps(fn)
    def rule(*args, **kwargs):
        k = len(args) if n_tensors is None else n_tensors
        operands, rest = args[:k], args[k:]
        compute, result = promote(*operands, kind=kind)
        arrays = [as_array(a, compute) if a is not None else None for a in operands]
        out = fn(*arrays, *rest, **kwargs)
        return out.astype(result) if out.dtype != result else out

    return rule


def register_pointwise(
    ops: Sequence, fn: Callable, kind: Kind = Kind.DEFAULT, n_tensors: int | None = None
) -> Callable:
    """Register the promoted ``fn`` for each overload in ``ops``."""
    rule = pointwise(fn, kind, n_tensors)
    register(*ops)(rule)
    return rule


def conv_dimension_numbers(n: int) -> tuple[str, str, str]:
    """torch's layouts for an ``n``-d convolution: ``NC*`` input and output, ``OI*`` kernel."""
    spatial = "DHW"[-n:]
    return (f"NC{spatial}", f"OI{spatial}", f"NC{spatial}")


def conv_general(x, w, stride, pads, dilation, groups, acc):
    """XLA's convolution in torch's layouts (``NC*`` input, ``OI*`` kernel), at full precision.

    HIGHEST: XLA's default float32 convolution may use bf16 passes (TPU/GPU TF32), torch's
    does not.
    """
    return lax.conv_general_dilated(
        x,
        w,
        window_strides=stride,
        padding=pads,
        rhs_dilation=dilation,
        dimension_numbers=conv_dimension_numbers(w.ndim - 2),
        feature_group_count=groups,
        precision=lax.Precision.HIGHEST,
        preferred_element_type=acc,
    )
