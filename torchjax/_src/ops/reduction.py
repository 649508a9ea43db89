"""Reductions (sum, mean, var, norms, any/all, ...), scans (cumsum, cummax, ...) and
the sort family (sort, topk, kthvalue, median, mode)."""

from __future__ import annotations

import builtins

import jax
import jax.numpy as jnp
import torch
from jax import lax

from ..registry import aten, register
from ._common import Kind, as_array, canonical_dim, canonical_dims, jdtype, promote

prims = torch.ops.prims

# --------------------------------------------------------------------------- helpers


def _axes(x, dim) -> tuple[int, ...]:
    """The axes ``dim`` names (None or [] = all); a 0-d tensor accepts dim 0 / -1 and has none."""
    if x.ndim == 0:
        for d in [dim] if isinstance(dim, int) else dim or ():
            canonical_dim(d, 0)
        return ()
    return canonical_dims(dim, x.ndim)


def _is_low_float(dtype) -> bool:
    return dtype in (jnp.bfloat16, jnp.float16)


def _acc(x):
    """torch accumulates half-precision floats in float32 (its "opmath" type)."""
    return x.astype(jnp.float32) if _is_low_float(x.dtype) else x


def _is_int_like(dtype) -> bool:
    return jnp.issubdtype(dtype, jnp.integer) or dtype == jnp.bool_


def _sum_dtype(x, dtype):
    """sum/prod/cumsum promote integers and bool to int64 unless ``dtype`` is given."""
    if dtype is not None:
        return jdtype(dtype)
    return jnp.int64 if _is_int_like(x.dtype) else x.dtype


def _float_only(name: str, x, dtype=None):
    target = jdtype(dtype) if dtype is not None else x.dtype
    if not jnp.issubdtype(target, jnp.inexact):
        torch_name = str(jax_to_torch(target)).removeprefix("torch.")
        raise RuntimeError(
            f"{name}(): could not infer output dtype. Input dtype must be either a floating point "
            f"or complex dtype. Got: {torch_name.capitalize()}"
        )
    return target


def jax_to_torch(dtype):
    from .. import dtypes

    return dtypes.to_torch_dtype(dtype)


def _real_dtype(dtype):
    return jnp.finfo(dtype).dtype if jnp.issubdtype(dtype, jnp.complexfloating) else dtype


def _to_float(x):
    """Integers and bool become torch's default float dtype (int -> float ops)."""
    return x if jnp.issubdtype(x.dtype, jnp.inexact) else x.astype(jnp.float32)


# --------------------------------------------------------------------------- sum, prod, mean


@register(*aten("sum", "default", "dim_IntList"))
def sum(x, dim=None, keepdim=False, *, dtype=None):
    out_dtype = _sum_dtype(x, dtype)
    return jnp.sum(_acc(x.astype(out_dtype)), axis=_axes(x, dim), keepdims=keepdim).astype(out_dtype)


@register(*aten("nansum"))
def nansum(x, dim=None, keepdim=False, *, dtype=None):
    out_dtype = _sum_dtype(x, dtype)
    return jnp.nansum(_acc(x.astype(out_dtype)), axis=_axes(x, dim), keepdims=keepdim).astype(out_dtype)


@register(*aten("prod", "default", "dim_int"))
def prod(x, dim=None, keepdim=False, *, dtype=None):
    out_dtype = _sum_dtype(x, dtype)
    return jnp.prod(_acc(x.astype(out_dtype)), axis=_axes(x, dim), keepdims=keepdim).astype(out_dtype)


@register(*aten("mean", "default", "dim"))
def mean(x, dim=None, keepdim=False, *, dtype=None):
    out_dtype = _float_only("mean", x, dtype)
    return jnp.mean(_acc(x.astype(out_dtype)), axis=_axes(x, dim), keepdims=keepdim).astype(out_dtype)


# --------------------------------------------------------------------------- var, std


def _var_mean(x, axes, correction, keepdim):
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        raise RuntimeError("std and var only support floating point and complex dtypes")
    xa = _acc(x)
    m = jnp.mean(xa, axis=axes, keepdims=True)
    n = 1
    for a in axes:
        n *= x.shape[a]
    centered = xa - m
    sq = jnp.real(centered * jnp.conj(centered)) if jnp.iscomplexobj(centered) else centered * centered
    # torch divides by max(N - correction, 0): 0 gives inf (or nan when the sum is 0).
    var = jnp.sum(sq, axis=axes, keepdims=keepdim) / builtins.max(n - correction, 0)
    if not keepdim:
        m = jnp.squeeze(m, axis=axes)
    return var.astype(_real_dtype(x.dtype)), m.astype(x.dtype)


def _correction(correction):
    return 1 if correction is None else correction


# var.default/.dim (unbiased=) are CompositeImplicit: torch rewrites them to .correction.
@register(*aten("var", "correction"))
def var(x, dim=None, *, correction=None, keepdim=False):
    return _var_mean(x, _axes(x, dim), _correction(correction), keepdim)[0]


@register(*aten("var", "dim"))
def var_dim(x, dim=None, unbiased=True, keepdim=False):
    # CompositeImplicit (rewritten to .correction before dispatch) but in the core ATen set;
    # a direct rule serves graphs exported in core ATen that call it by name
    return var(x, dim, correction=1 if unbiased else 0, keepdim=keepdim)


@register(*aten("std", "correction"))
def std(x, dim=None, *, correction=None, keepdim=False):
    return jnp.sqrt(var(x, dim, correction=correction, keepdim=keepdim))


@register(*aten("var_mean", "correction"))
def var_mean(x, dim=None, *, correction=None, keepdim=False):
    return _var_mean(x, _axes(x, dim), _correction(correction), keepdim)


@register(*aten("std_mean", "correction"))
def std_mean(x, dim=None, *, correction=None, keepdim=False):
    v, m = var_mean(x, dim, correction=correction, keepdim=keepdim)
    return jnp.sqrt(v), m


# --------------------------------------------------------------------------- max, min, arg*


@register(*aten("amax"))
def amax(x, dim=(), keepdim=False):
    return jnp.max(x, axis=_axes(x, dim), keepdims=keepdim)


@register(*aten("amin"))
def amin(x, dim=(), keepdim=False):
    return jnp.min(x, axis=_axes(x, dim), keepdims=keepdim)


@register(*aten("aminmax"))
def aminmax(x, *, dim=None, keepdim=False):
    axes = _axes(x, dim)
    return jnp.min(x, axis=axes, keepdims=keepdim), jnp.max(x, axis=axes, keepdims=keepdim)


def _arg_reduce(fn, x, dim, keepdim):
    if dim is None:
        out = fn(x.reshape(-1)).astype(jnp.int64)
        return out.reshape((1,) * x.ndim) if keepdim else out
    if x.ndim == 0:
        canonical_dim(dim, 0)
        return jnp.zeros((), jnp.int64)
    return fn(x, axis=canonical_dim(dim, x.ndim), keepdims=keepdim).astype(jnp.int64)


@register(*aten("argmax"))
def argmax(x, dim=None, keepdim=False):
    return _arg_reduce(jnp.argmax, x, dim, keepdim)


@register(*aten("argmin"))
def argmin(x, dim=None, keepdim=False):
    return _arg_reduce(jnp.argmin, x, dim, keepdim)


@register(*aten("max", "default"))
def max(x):
    return jnp.max(x)


@register(*aten("min", "default"))
def min(x):
    return jnp.min(x)


@register(*aten("max", "dim"))
def max_dim(x, dim, keepdim=False):
    return amax(x, [dim], keepdim), argmax(x, dim, keepdim)


@register(*aten("min", "dim"))
def min_dim(x, dim, keepdim=False):
    return amin(x, [dim], keepdim), argmin(x, dim, keepdim)


# --------------------------------------------------------------------------- logical, counting, norms


def _logical_reduce(fn, x, dim, keepdim):
    out = fn(x, axis=_axes(x, dim), keepdims=keepdim)
    # torch keeps uint8 for uint8 inputs (a legacy of masks stored as bytes).
    return out.astype(jnp.uint8) if x.dtype == jnp.uint8 else out


@register(*aten("any", "default", "dim", "dims"))
def any(x, dim=None, keepdim=False):
    return _logical_reduce(jnp.any, x, dim, keepdim)


@register(*aten("all", "default", "dim", "dims"))
def all(x, dim=None, keepdim=False):
    return _logical_reduce(jnp.all, x, dim, keepdim)


@register(*aten("count_nonzero", "default", "dim_IntList"))
def count_nonzero(x, dim=None):
    return jnp.sum(x != 0, axis=_axes(x, dim), dtype=jnp.int64)


@register(*aten("logsumexp"))
def logsumexp(x, dim, keepdim=False):
    x = _to_float(x)
    axes = _axes(x, dim)
    if x.ndim == 0:
        return x
    return jax.scipy.special.logsumexp(_acc(x), axis=axes, keepdims=keepdim).astype(x.dtype)


def _vector_norm(x, ord, axes, keepdim):
    a = jnp.abs(_acc(x))
    ord = float(ord)
    if ord == float("inf"):
        return jnp.max(a, axis=axes, keepdims=keepdim)
    if ord == float("-inf"):
        return jnp.min(a, axis=axes, keepdims=keepdim)
    if ord == 0:
        return jnp.sum(a != 0, axis=axes, keepdims=keepdim).astype(a.dtype)
    if ord == 1:
        return jnp.sum(a, axis=axes, keepdims=keepdim)
    if ord == 2:
        return _root(jnp.sum(a * a, axis=axes, keepdims=keepdim), 2.0)
    return _root(jnp.sum(a**ord, axis=axes, keepdims=keepdim), ord)


def _root(s, ord: float):
    """``s ** (1/ord)`` whose gradient at ``s == 0`` is 0 (torch's subgradient), not NaN."""
    zero = s == 0
    safe = jnp.where(zero, jnp.ones_like(s), s)
    root = jnp.sqrt(safe) if ord == 2 else safe ** (1.0 / ord)
    return jnp.where(zero, jnp.zeros_like(s), root)


@register(*aten("linalg_vector_norm"))
def linalg_vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        raise RuntimeError(f"linalg.vector_norm: Expected a floating point or complex tensor as input. Got {x.dtype}")
    if dtype is not None:
        x = x.astype(jdtype(dtype))
    out = _vector_norm(x, ord, _axes(x, dim), keepdim)
    return out.astype(_real_dtype(x.dtype))


@register(*aten("norm", "Scalar", "ScalarOpt_dim", "ScalarOpt_dim_dtype", "ScalarOpt_dtype"))
def norm(x, p=2, dim=None, keepdim=False, *, dtype=None):
    return linalg_vector_norm(x, 2 if p is None else p, dim, keepdim, dtype=dtype)


# --------------------------------------------------------------------------- scans


def _scan_prep(x, dim):
    return (x, None) if x.ndim == 0 else (x, canonical_dim(dim, x.ndim))


@register(*aten("cumsum"))
def cumsum(x, dim, *, dtype=None):
    out_dtype = _sum_dtype(x, dtype)
    x, axis = _scan_prep(x.astype(out_dtype), dim)
    return x if axis is None else jnp.cumsum(_acc(x), axis=axis).astype(out_dtype)


@register(*aten("cumprod"))
def cumprod(x, dim, *, dtype=None):
    out_dtype = _sum_dtype(x, dtype)
    x, axis = _scan_prep(x.astype(out_dtype), dim)
    return x if axis is None else jnp.cumprod(_acc(x), axis=axis).astype(out_dtype)


@register(*aten("logcumsumexp"))
def logcumsumexp(x, dim):
    x, axis = _scan_prep(_to_float(x), dim)
    return x if axis is None else lax.cumlogsumexp(_acc(x), axis=axis).astype(x.dtype)


def _cum_extreme(x, dim, better):
    """cummax/cummin: torch moves to a later element when it is as good or NaN."""
    if x.ndim == 0:
        canonical_dim(dim, 0)
        return x, jnp.zeros((), jnp.int64)
    axis = canonical_dim(dim, x.ndim)
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    idx = jnp.broadcast_to(jnp.arange(x.shape[axis], dtype=jnp.int64).reshape(shape), x.shape)

    def combine(a, b):
        (va, ia), (vb, ib) = a, b
        take_b = better(vb, va)
        if jnp.issubdtype(va.dtype, jnp.inexact):
            take_b = take_b | jnp.isnan(vb)
        return jnp.where(take_b, vb, va), jnp.where(take_b, ib, ia)

    return lax.associative_scan(combine, (x, idx), axis=axis)


@register(*aten("cummax"))
def cummax(x, dim):
    return _cum_extreme(x, dim, lambda b, a: b >= a)


@register(*aten("cummin"))
def cummin(x, dim):
    return _cum_extreme(x, dim, lambda b, a: b <= a)


# --------------------------------------------------------------------------- sorting


def _sort_keys(x, descending: bool) -> list:
    """Keys for a stable ``lax.sort`` in torch's order: NaN above everything, -0.0 == 0.0."""
    if x.dtype == jnp.bool_:
        x = x.astype(jnp.uint8)
    if jnp.issubdtype(x.dtype, jnp.floating):
        nan = jnp.isnan(x)
        v = jnp.where(nan | (x == 0), jnp.zeros((), x.dtype), x)
        return [~nan, -v] if descending else [nan, v]
    return [~x] if descending else [x]  # ~ reverses the order of every integer type


def _sort(x, dim=-1, descending=False):
    if x.ndim == 0:
        canonical_dim(dim, 0)
        return x, jnp.zeros((), jnp.int64)
    axis = canonical_dim(dim, x.ndim)
    idx = lax.broadcasted_iota(jnp.int64, x.shape, axis)
    keys = _sort_keys(x, descending)
    out = lax.sort((*keys, x, idx), dimension=axis, is_stable=True, num_keys=len(keys))
    return out[-2], out[-1]


@register(*aten("sort", "default"))
def sort(x, dim=-1, descending=False):
    # Always stable: torch's CPU sort is stable for small inputs, and ties must not shuffle.
    return _sort(x, dim, descending)


@register(*aten("sort", "stable"))
def sort_stable(x, *, stable=None, dim=-1, descending=False):
    return _sort(x, dim, descending)


def _take(arrays, axis, start, size):
    return tuple(lax.slice_in_dim(a, start, start + size, axis=axis) for a in arrays)


@register(*aten("topk"))
def topk(x, k, dim=-1, largest=True, sorted=True):
    values, indices = _sort(x, dim, descending=largest)
    if x.ndim == 0:
        return values, indices
    return _take((values, indices), canonical_dim(dim, x.ndim), 0, k)


def _select_along(values, indices, axis, pos, keepdim):
    """values/indices at per-slice position ``pos`` (an array shaped like the reduced slices)."""
    pos = jnp.expand_dims(pos, axis)
    v = jnp.take_along_axis(values, pos, axis=axis)
    i = jnp.take_along_axis(indices, pos, axis=axis)
    if not keepdim:
        v, i = jnp.squeeze(v, axis), jnp.squeeze(i, axis)
    return v, i


@register(*aten("kthvalue"))
def kthvalue(x, k, dim=-1, keepdim=False):
    values, indices = _sort(x, dim)
    if x.ndim == 0:
        return values, indices
    axis = canonical_dim(dim, x.ndim)
    v, i = _take((values, indices), axis, k - 1, 1)
    return (v, i) if keepdim else (jnp.squeeze(v, axis), jnp.squeeze(i, axis))


def _median(x, dim, keepdim, ignore_nan):
    if x.ndim == 0:
        canonical_dim(dim, 0)
        return x, jnp.zeros((), jnp.int64)
    axis = canonical_dim(dim, x.ndim)
    values, indices = _sort(x, axis)
    n = x.shape[axis]
    if jnp.issubdtype(x.dtype, jnp.floating):
        valid = jnp.sum(~jnp.isnan(x), axis=axis)
        if ignore_nan:
            pos = jnp.maximum(valid - 1, 0) // 2
        else:  # NaN wins: torch returns the first NaN (sorted last, so at position `valid`)
            pos = jnp.where(valid < n, valid, (n - 1) // 2)
    else:
        pos = jnp.full(values.shape[:axis] + values.shape[axis + 1 :], (n - 1) // 2)
    return _select_along(values, indices, axis, pos, keepdim)


@register(*aten("median", "dim"))
def median_dim(x, dim, keepdim=False):
    return _median(x, dim, keepdim, ignore_nan=False)


@register(*aten("nanmedian", "dim"))
def nanmedian_dim(x, dim, keepdim=False):
    return _median(x, dim, keepdim, ignore_nan=True)


@register(*aten("median", "default"))
def median(x):
    return _median(x.reshape(-1), 0, False, ignore_nan=False)[0]


@register(*aten("nanmedian", "default"))
def nanmedian(x):
    return _median(x.reshape(-1), 0, False, ignore_nan=True)[0]


@register(*aten("mode"))
def mode(x, dim=-1, keepdim=False):
    """The most frequent value (the smallest among ties) and its last index."""
    if x.ndim == 0:
        canonical_dim(dim, 0)
        return x, jnp.zeros((), jnp.int64)
    axis = canonical_dim(dim, x.ndim)
    values, indices = _sort(x, axis)
    n = x.shape[axis]
    pos = lax.broadcasted_iota(jnp.int64, x.shape, axis)
    prev = jnp.concatenate(
        [lax.slice_in_dim(values, 0, 1, axis=axis), lax.slice_in_dim(values, 0, n - 1, axis=axis)], axis
    )
    nxt = jnp.concatenate(
        [lax.slice_in_dim(values, 1, n, axis=axis), lax.slice_in_dim(values, n - 1, n, axis=axis)], axis
    )
    starts = (pos == 0) | (values != prev)
    ends = (pos == n - 1) | (values != nxt)
    run_start = lax.cummax(jnp.where(starts, pos, 0), axis=axis)
    run_len = jnp.where(ends, pos - run_start + 1, 0)
    best = jnp.argmax(run_len, axis=axis)  # first maximum: the smallest value among ties
    return _select_along(values, indices, axis, best, keepdim)


# --------------------------------------------------------------------------- prims (reached via decompositions)


def _prim_axes(x, dims) -> tuple[int, ...]:
    """prims name their axes exactly: None is all of them, [] is none."""
    return tuple(range(x.ndim)) if dims is None else tuple(canonical_dim(d, x.ndim) for d in dims)


def _prim_reduce(fn):
    def rule(inp, dims, *, output_dtype=None):
        out = fn(_acc(inp), axis=_prim_axes(inp, dims))
        return out.astype(jdtype(output_dtype) if output_dtype is not None else inp.dtype)

    return rule


register(prims.sum.default)(_prim_reduce(jnp.sum))
register(prims.prod.default)(_prim_reduce(jnp.prod))
register(prims.amax.default)(_prim_reduce(jnp.max))
register(prims.amin.default)(_prim_reduce(jnp.min))
register(prims.xor_sum.default)(_prim_reduce(lambda x, axis: lax.reduce_xor_p.bind(x, axes=axis)))


@register(prims.var.default)
def prims_var(inp, dims, correction=1, *, output_dtype=None):
    out = _var_mean(inp, _prim_axes(inp, dims), correction, False)[0]
    return out.astype(jdtype(output_dtype)) if output_dtype is not None else out


# --------------------------------------------------------------------------- hash_tensor


@register(*aten("hash_tensor"))
def hash_tensor(x, dim=(), *, keepdim=False, mode=0):
    """torch's mode 0: xor of each element's bits as a 64-bit word (floats widened to double)."""
    if mode != 0:
        raise RuntimeError(f"hash_tensor: unsupported mode {mode}")
    axes = _axes(x, dim)
    if x.size == 0:
        if not dim:
            raise RuntimeError(
                "hash_tensor: Expected reduction dim to be specified for input.numel() == 0. "
                "Specify the reduction dim with the 'dim' argument."
            )
        for a in axes:
            if x.shape[a] == 0:
                raise IndexError(f"hash_tensor: Expected reduction dim {a} to have non-zero size.")
    wide = jnp.float64 if jnp.issubdtype(x.dtype, jnp.floating) else jnp.int64
    bits = lax.bitcast_convert_type(x.astype(wide), jnp.uint64)
    out = lax.reduce(bits, jnp.uint64(0), lax.bitwise_xor, axes)
    if keepdim:
        out = jnp.expand_dims(out, axes)
    return out


# --------------------------------------------------------------------------- segment_reduce


def _segment_ids(bounds, size: int):
    """For ``bounds`` (O, S + 1) of segment offsets: each position's segment, S where none.

    Segments are contiguous, so position j is in the segment whose end is the first
    one past j; positions before the first offset or past the last are in none.
    """
    pos = jnp.arange(size, dtype=bounds.dtype)
    seg = jax.vmap(lambda ends: jnp.searchsorted(ends, pos, side="right"))(bounds[:, 1:])
    outside = (pos < bounds[:, :1]) | (pos >= bounds[:, -1:])
    return jnp.where(outside, bounds.shape[-1] - 1, seg)


def _segment_prod(values, seg, n_segments: int):
    """Product per segment as a segmented scan: its gradient handles zeros, unlike scatter-mul's."""
    start = jnp.concatenate([jnp.ones_like(seg[..., :1], bool), seg[..., 1:] != seg[..., :-1]], axis=-1)
    start = start.reshape(start.shape + (1,) * (values.ndim - seg.ndim))

    def combine(a, b):
        (va, fa), (vb, fb) = a, b
        return jnp.where(fb, vb, va * vb), fa | fb

    running, _ = lax.associative_scan(combine, (values, jnp.broadcast_to(start, values.shape)), axis=seg.ndim - 1)
    # the running product at each segment's last position is the segment's product
    last = jnp.concatenate([seg[..., 1:] != seg[..., :-1], jnp.ones_like(seg[..., :1], bool)], axis=-1)
    ids = jnp.where(last & (seg < n_segments), seg, n_segments)
    return _segment_scatter(running, ids, n_segments, "sum", 0)


def _segment_scatter(values, seg, n_segments: int, how: str, start):
    """Scatter-reduce ``values`` (O, A, I) into (O, S, I) along axis 1 by ``seg`` (O, A).

    Each segment starts from ``start``, as torch's kernel does, so a half-precision sum
    rounds in the same order.
    """
    o, a = seg.shape
    rows = jnp.broadcast_to(jnp.arange(o)[:, None], (o, a))
    at = jnp.full((o, n_segments) + values.shape[2:], start, values.dtype).at[rows, seg]
    return {"sum": at.add, "max": at.max, "min": at.min}[how](values, mode="drop")


_SEGMENT_IDENTITY = {"sum": 0.0, "mean": 0.0, "max": -float("inf"), "min": float("inf"), "prod": 1.0}


@register(*aten("segment_reduce"))
def segment_reduce(data, reduce, *, lengths=None, indices=None, offsets=None, axis=0, unsafe=False, initial=None):
    """Reduce contiguous runs along ``axis``; there are as many runs as ``lengths`` (or ``offsets`` - 1) has."""
    if indices is not None:
        raise RuntimeError("segment_reduce(): indices based reduction is not supported yet.")
    if reduce not in _SEGMENT_IDENTITY:
        raise RuntimeError(f"reduce argument must be either sum, prod, max, min or mean, got {reduce}")
    axis = canonical_dim(axis, data.ndim)
    counts = lengths if lengths is not None else offsets
    if counts is None:
        raise RuntimeError("segment_reduce(): Either lengths or offsets must be defined")
    if axis != counts.ndim - 1:
        kind = "lengths" if lengths is not None else "offsets"
        raise RuntimeError(f"segment_reduce(): Expected axis to be the last dimension of {kind} but got {axis}.")
    if lengths is not None:
        bounds = jnp.concatenate([jnp.zeros_like(lengths[..., :1]), jnp.cumsum(lengths, axis=-1)], axis=-1)
    else:
        bounds = offsets
    n_segments = bounds.shape[-1] - 1
    outer, size, inner = data.shape[:axis], data.shape[axis], data.shape[axis + 1 :]
    bounds = jnp.broadcast_to(bounds, outer + bounds.shape[-1:]).reshape(-1, n_segments + 1)
    values = data.reshape((-1, size) + inner)
    seg = _segment_ids(bounds, size)
    start = jnp.asarray(_SEGMENT_IDENTITY[reduce] if initial is None else initial, data.dtype)
    length = (bounds[:, 1:] - bounds[:, :-1]).reshape((-1, n_segments) + (1,) * len(inner))
    if reduce == "prod":
        out = jnp.where(length > 0, _segment_prod(values, seg, n_segments), 1) * start
    else:
        out = _segment_scatter(values, seg, n_segments, "sum" if reduce == "mean" else reduce, start)
    if reduce == "mean":
        # torch: an empty segment's mean is NaN, or ``initial`` when given
        mean = out / jnp.maximum(length, 1).astype(data.dtype)
        out = jnp.where(length > 0, mean, jnp.nan if initial is None else out).astype(data.dtype)
    return out.reshape(outer + (n_segments,) + inner)


# --------------------------------------------------------------------------- cov, corrcoef
# Both are CompositeImplicit in torch, whose C++ cov asks `torch.equal(norm_factor <= 0,
# 1)` for a Python bool (to warn); these rules keep the whole computation traceable.


def _binary(op, a, b, kind: Kind = Kind.DEFAULT):
    """``op(a, b)`` computed in torch's promoted dtype."""
    compute, result = promote(a, b, kind=kind)
    return op(as_array(a, compute), as_array(b, compute)).astype(result)


def _divide(a, b):
    return _binary(jnp.true_divide, a, b, Kind.INT_TO_FLOAT)


@register(*aten("cov"))
def cov(x, *, correction=1, fweights=None, aweights=None):
    if x.ndim > 2:
        raise RuntimeError(
            f"cov(): expected input to have two or fewer dimensions but got an input with {x.ndim} dimensions"
        )
    if x.dtype == jnp.bool_:
        raise RuntimeError("cov(): bool dtype is not supported for input")
    x = x.reshape(1, -1) if x.ndim < 2 else x
    w = None
    if fweights is not None:
        if not jnp.issubdtype(fweights.dtype, jnp.integer):
            raise RuntimeError(
                f"cov(): expected fweights to have integral dtype but got fweights with {jax_to_torch(fweights.dtype)} dtype"
            )
        w = fweights
    if aweights is not None:
        if not jnp.issubdtype(aweights.dtype, jnp.floating):
            raise RuntimeError(
                f"cov(): expected aweights to have floating point dtype but got aweights with {jax_to_torch(aweights.dtype)} dtype"
            )
        w = aweights if w is None else _binary(jnp.multiply, w, aweights)
    if w is None:
        w_sum = jnp.asarray(x.shape[1], jnp.int64)
        total = sum(x, [1])
    else:
        w = w.reshape(-1)
        w_sum = sum(w)
        total = sum(_binary(jnp.multiply, x, w), [1])
    avg = _divide(total, w_sum)
    if w is not None and aweights is not None and correction != 0:
        norm = _binary(
            jnp.subtract, w_sum, _divide(correction * sum(_binary(jnp.multiply, w, aweights.reshape(-1))), w_sum)
        )
    else:
        norm = _binary(jnp.subtract, w_sum, jnp.asarray(correction, w_sum.dtype))
    # torch zeroes a non-positive normaliser (after a warning): the result is then inf/nan
    norm = jnp.where(norm <= 0, jnp.zeros((), norm.dtype), norm)
    centered = _binary(jnp.subtract, x, avg[:, None])
    right = centered if w is None else _binary(jnp.multiply, centered, w)
    c = jnp.matmul(centered, jnp.conj(right).T, precision=lax.Precision.HIGHEST)
    return jnp.squeeze(_divide(c, norm))


@register(*aten("corrcoef"))
def corrcoef(x):
    if x.ndim > 2:
        raise RuntimeError(
            f"corrcoef(): expected input to have two or fewer dimensions but got an input with {x.ndim} dimensions"
        )
    c = cov(x)
    if c.ndim == 0:
        return c / c  # nan for a constant (or inf/nan) variance, 1 otherwise
    d = jnp.diagonal(c)
    stddev = jnp.sqrt(jnp.real(d)).astype(d.dtype)
    c = c / stddev[:, None] / stddev[None, :]
    if jnp.iscomplexobj(c):
        return lax.complex(jnp.clip(c.real, -1, 1), jnp.clip(c.imag, -1, 1))
    return jnp.clip(c, -1, 1)
