"""Indexing ops: advanced indexing (index, index_put), gather/scatter and their
reductions, index_* along a dim, masks (masked_fill, masked_scatter), take/put,
nonzero and the sorted searches (searchsorted, bucketize).

Shapes in XLA are static, so ops whose output shape depends on values (``x[mask]``,
``nonzero``, ``masked_select``) work on concrete arrays only and raise a
``TracingError`` that names a static alternative when traced. Writes through a mask
(``x[mask] = v``) keep their shape and are traced without trouble.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..errors import TracingError
from ..registry import aten, register
from ._common import Kind, canonical_dim, promote

# --------------------------------------------------------------------------- helpers


def _is_traced(x) -> bool:
    return isinstance(x, jax.core.Tracer)


def _is_mask(i) -> bool:
    return i.dtype in (jnp.bool_, jnp.uint8)


def _data_dependent(what: str, instead: str) -> TracingError:
    return TracingError(
        f"torchjax: {what} has a data-dependent output shape (it depends on the values of a "
        f"tensor), which XLA cannot compile: every shape must be known while tracing.\n"
        f"Instead: {instead}"
    )


_MASK_HINT = (
    "keep the shape static, e.g. `torch.where(mask, x, 0)` or `x.masked_fill(~mask, 0)` "
    "followed by a reduction, instead of `x[mask]`."
)


def _numpy_indices(x, indices) -> tuple:
    """torch's index list (None = whole dim) as a NumPy-style index tuple; masks become positions."""
    out: list = []
    for i in indices:
        if i is None:
            out.append(slice(None))
        elif _is_mask(i):
            if _is_traced(i):
                raise _data_dependent("indexing with a boolean mask (`x[mask]`)", _MASK_HINT)
            out.extend(jnp.asarray(p) for p in np.nonzero(np.asarray(i)))
        else:
            out.append(i)
    return tuple(out)


def _scalar_for(value, dtype):
    return jnp.asarray(value).astype(dtype)


# --------------------------------------------------------------------------- index, index_put


@register(*aten("index", "Tensor", "Tensor_hacked_twin"), *aten("_unsafe_index", "Tensor", "Tensor_hacked_twin"))
def index(x, indices):
    return x[_numpy_indices(x, indices)]


def _accumulate(x, at, values, mode=None):
    # bool "addition" in torch saturates at True: a logical or
    ref = x.at[at]
    return ref.max(values, mode=mode) if x.dtype == jnp.bool_ else ref.add(values, mode=mode)


def _put_through_mask(x, pos: int, mask, values, accumulate: bool):
    """``x[:, ..., mask] = values`` (mask at dim ``pos``) with static shapes.

    The selection ``x[mask]`` has a value-dependent length N; ``values`` either
    broadcasts along it (size 1) or lists one entry per True in row-major order,
    which a running count of the mask finds without knowing N.
    """
    k, post = mask.ndim, x.ndim - pos - mask.ndim
    v = values.astype(x.dtype)
    target_ndim = pos + 1 + post
    if v.ndim > target_ndim:
        raise RuntimeError(f"shape mismatch: value tensor of shape {v.shape} cannot be broadcast to the selection")
    v = v.reshape((1,) * (target_ndim - v.ndim) + v.shape)
    if v.shape[pos] == 1:
        full = v.reshape(v.shape[:pos] + (1,) * k + v.shape[pos + 1 :])
    else:
        order = jnp.clip(jnp.cumsum(mask.reshape(-1), dtype=jnp.int64) - 1, 0, v.shape[pos] - 1)
        full = jnp.take(v, order.reshape(mask.shape), axis=pos)
    m = mask.astype(jnp.bool_).reshape((1,) * pos + mask.shape + (1,) * post)
    if accumulate:
        added = jnp.where(m, full, jnp.zeros((), x.dtype))
        return x | added if x.dtype == jnp.bool_ else x + added
    return jnp.where(m, full, x)


@register(
    *aten("index_put", "default", "hacked_twin"),
    *aten("_unsafe_index_put", "default", "hacked_twin"),
    *aten("_index_put_impl"),
)
def index_put(x, indices, values, accumulate=False, unsafe=False):
    given = [(p, i) for p, i in enumerate(indices) if i is not None]
    traced_masks = [i for _, i in given if _is_mask(i) and _is_traced(i)]
    if traced_masks:
        if len(given) != 1:
            raise _data_dependent(
                "assigning through a boolean mask mixed with other tensor indices",
                "index with the mask alone (`x[mask] = v`) or use torch.where.",
            )
        # indices before the mask are whole dims (None); it starts at their count
        pos, mask = given[0]
        return _put_through_mask(x, pos, mask, values, accumulate)
    at = _numpy_indices(x, indices)
    values = values.astype(x.dtype)
    return _accumulate(x, at, values) if accumulate else x.at[at].set(values)


@register(*aten("_unsafe_masked_index"))
def _unsafe_masked_index(x, mask, indices, fill):
    # the masked-out indices may be out of range; they are clamped, then replaced by `fill`
    return jnp.where(mask, x[_numpy_indices(x, indices)], _scalar_for(fill, x.dtype))


@register(*aten("_unsafe_masked_index_put_accumulate"))
def _unsafe_masked_index_put_accumulate(x, mask, indices, values):
    values = jnp.where(mask, values.astype(x.dtype), jnp.zeros((), x.dtype))
    return _accumulate(x, _numpy_indices(x, indices), values, mode="drop")


# --------------------------------------------------------------------------- reductions into positions

_EXCLUDED_IDENTITY = {"sum": 0, "mean": 0, "prod": 1}


def _identity(reduce: str, dtype):
    if reduce in _EXCLUDED_IDENTITY:
        return jnp.asarray(_EXCLUDED_IDENTITY[reduce]).astype(dtype)
    if dtype == jnp.bool_:
        return jnp.asarray(reduce == "amin")
    if jnp.issubdtype(dtype, jnp.inexact):
        return jnp.asarray(jnp.inf if reduce == "amin" else -jnp.inf, dtype)
    info = jnp.iinfo(dtype)
    return jnp.asarray(info.max if reduce == "amin" else info.min, dtype)


def _split_at(at):
    """``at`` as (its arrays, a function rebuilding it from arrays): arrays must be explicit
    arguments of a custom_jvp function, the slices stay static."""
    arrays = [a for a in at if not isinstance(a, slice)]

    def rebuild(arrs):
        it = iter(arrs)
        return tuple(a if isinstance(a, slice) else next(it) for a in at)

    return arrays, rebuild


def _product_of_others(v, nonzero_prod, zero_count):
    """Product of the other factors at v's position, exact when factors are zero."""
    safe = jnp.where(v == 0, jnp.ones((), v.dtype), v)
    return jnp.where(
        v != 0,
        jnp.where(zero_count == 0, nonzero_prod / safe, 0),
        jnp.where(zero_count == 1, nonzero_prod, 0),
    ).astype(v.dtype)


def _scatter_prod(x, at, src):
    """x.at[at].multiply(src), differentiable: JAX has no scatter_mul derivative for repeated
    indices, so the JVP is written out: each factor's tangent times the product of the others."""
    arrays, rebuild = _split_at(at)

    @jax.custom_jvp
    def prod(x, src, *arrs):
        return x.at[rebuild(arrs)].multiply(src)

    @prod.defjvp
    def prod_jvp(primals, tangents):
        x, src, *arrs = primals
        dx, dsrc = tangents[:2]
        where = rebuild(arrs)
        one = jnp.ones((), x.dtype)
        nonzero_prod = jnp.where(x == 0, one, x).at[where].multiply(jnp.where(src == 0, one, src))
        zeros = (x == 0).astype(jnp.int32).at[where].add((src == 0).astype(jnp.int32))
        d_self = _product_of_others(x, nonzero_prod, zeros) * dx
        d_src = _product_of_others(src, nonzero_prod[where], zeros[where]) * dsrc
        return prod(x, src, *arrs), d_self.at[where].add(d_src)

    return prod(x, src, *arrays)


def _combine(x, at, src, reduce: str):
    ref = x.at[at]
    if reduce in ("sum", "mean"):
        return ref.max(src) if x.dtype == jnp.bool_ else ref.add(src)
    if reduce == "prod":
        if x.dtype == jnp.bool_:
            return ref.min(src)
        return _scatter_prod(x, at, src) if jnp.issubdtype(x.dtype, jnp.inexact) else ref.multiply(src)
    if reduce == "amax":
        return ref.max(src)
    if reduce == "amin":
        return ref.min(src)
    raise RuntimeError(f"reduce argument must be either sum, prod, mean, amax or amin, got {reduce}")


def _reduce_into(x, at, src, reduce: str, include_self: bool = True):
    """``x`` with ``src`` reduced into the positions ``x.at[at]`` names (torch's scatter_reduce)."""
    src = src.astype(x.dtype)
    base = x if include_self else x.at[at].set(_identity(reduce, x.dtype))
    out = _combine(base, at, src, reduce)
    if reduce != "mean":
        return out
    count = jnp.ones(x.shape, jnp.int64)
    if not include_self:
        count = count.at[at].set(0)
    count = count.at[at].add(jnp.ones(src.shape, jnp.int64))
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return (out / count).astype(x.dtype)
    return jnp.floor_divide(out, count).astype(x.dtype)


_REDUCE_ALIASES = {"add": "sum", "multiply": "prod"}


# --------------------------------------------------------------------------- gather, scatter


def _dim_coords(index, dim: int) -> tuple:
    """Positions ``index`` addresses in scatter/gather: itself along ``dim``, its own coords elsewhere."""
    return tuple(index if d == dim else lax.broadcasted_iota(jnp.int64, index.shape, d) for d in range(index.ndim))


def _as_1d(x, index, *more):
    """0-d tensors take part as 1-element 1-d tensors."""
    if x.ndim:
        return (x, index, *more)
    return (x.reshape(1), index.reshape(-1), *(m.reshape(-1) if hasattr(m, "reshape") else m for m in more))


@register(*aten("gather"))
def gather(x, dim, index, *, sparse_grad=False):
    out_shape = index.shape
    x, index = _as_1d(x, index)
    dim = canonical_dim(dim, x.ndim)
    if index.size == 0:
        return jnp.zeros(out_shape, x.dtype)
    x = x[tuple(slice(None) if d == dim else slice(0, n) for d, n in enumerate(index.shape))]
    return jnp.take_along_axis(x, index, axis=dim).reshape(out_shape)


def _scatter(x, dim, index, src, reduce: str | None, include_self: bool = True):
    shape = x.shape
    x, index = _as_1d(x, index)
    if not hasattr(src, "shape"):
        src = jnp.full(index.shape, src, x.dtype)
    src = src.reshape(-1) if src.ndim == 0 and index.ndim == 1 else src
    dim = canonical_dim(dim, x.ndim)
    if index.size == 0:
        return x.reshape(shape)
    src = src[tuple(slice(0, n) for n in index.shape)]
    at = _dim_coords(index, dim)
    if reduce is None:
        out = x.at[at].set(src.astype(x.dtype))
    else:
        out = _reduce_into(x, at, src, _REDUCE_ALIASES.get(reduce, reduce), include_self)
    return out.reshape(shape)


@register(*aten("scatter", "src", "value"))
def scatter(x, dim, index, src):
    return _scatter(x, dim, index, src, None)


@register(*aten("scatter", "reduce", "value_reduce"))
def scatter_reduce_legacy(x, dim, index, src, *, reduce):
    if reduce not in _REDUCE_ALIASES:
        raise RuntimeError(f"reduce argument must be either add or multiply, got {reduce}")
    return _scatter(x, dim, index, src, reduce)


@register(*aten("scatter_add"))
def scatter_add(x, dim, index, src):
    return _scatter(x, dim, index, src, "sum")


@register(*aten("scatter_reduce", "two"))
def scatter_reduce(x, dim, index, src, reduce, *, include_self=True):
    return _scatter(x, dim, index, src, reduce, include_self)


# --------------------------------------------------------------------------- index_* along a dim


def _along(x, dim: int, index, source=None):
    """(x, positions, source) for an index_* op: ``index`` picks whole slices along ``dim``."""
    if x.ndim == 0:
        x = x.reshape(1)
    dim = canonical_dim(dim, x.ndim)
    index = index.reshape(-1)
    at = (slice(None),) * dim + (index,)
    if source is not None:
        want = x.shape[:dim] + index.shape + x.shape[dim + 1 :]
        source = source.reshape(want) if source.size == np.prod(want) else source
        return x, at, source.astype(x.dtype)
    return x, at, None


@register(*aten("index_select"))
def index_select(x, dim, index):
    if x.ndim == 0:
        return x.reshape(1)[index.reshape(-1)].reshape(())
    dim = canonical_dim(dim, x.ndim)
    return jnp.take(x, index.reshape(-1), axis=dim)


@register(*aten("index_add"))
def index_add(x, dim, index, source, *, alpha=1):
    y, at, source = _along(x, dim, index, source)
    if alpha != 1:
        source = source * _scalar_for(alpha, source.dtype)
    return _accumulate(y, at, source).reshape(x.shape)


@register(*aten("index_copy"))
def index_copy(x, dim, index, source):
    y, at, source = _along(x, dim, index, source)
    return y.at[at].set(source).reshape(x.shape)


@register(*aten("index_fill", "int_Scalar", "int_Tensor"))
def index_fill(x, dim, index, value):
    y, at, _ = _along(x, dim, index)
    return y.at[at].set(_scalar_for(value, x.dtype)).reshape(x.shape)


@register(*aten("index_reduce"))
def index_reduce(x, dim, index, source, reduce, *, include_self=True):
    y, at, source = _along(x, dim, index, source)
    return _reduce_into(y, at, source, reduce, include_self).reshape(x.shape)


# --------------------------------------------------------------------------- masks


@register(*aten("masked_fill", "Scalar", "Tensor"))
def masked_fill(x, mask, value):
    if hasattr(value, "ndim") and value.ndim:
        raise RuntimeError(
            f"masked_fill_ only supports a 0-dimensional value tensor, but got tensor with {value.ndim} dimension(s)."
        )
    return jnp.where(mask, _scalar_for(value, x.dtype), x)


@register(*aten("masked_scatter"))
def masked_scatter(x, mask, source):
    """Trues of ``mask`` (row-major) take ``source``'s elements in order; a running count finds them."""
    shape = jnp.broadcast_shapes(x.shape, mask.shape)
    x, mask = jnp.broadcast_to(x, shape), jnp.broadcast_to(mask, shape)
    if source.size == 0:
        return x
    order = jnp.clip(jnp.cumsum(mask.reshape(-1), dtype=jnp.int64) - 1, 0, source.size - 1)
    return jnp.where(mask, source.reshape(-1)[order].reshape(shape).astype(x.dtype), x)


@register(*aten("masked_select"))
def masked_select(x, mask):
    if _is_traced(x) or _is_traced(mask):
        raise _data_dependent("torch.masked_select", _MASK_HINT)
    shape = jnp.broadcast_shapes(x.shape, mask.shape)
    return jnp.broadcast_to(x, shape)[np.asarray(jnp.broadcast_to(mask, shape))]


@register(*aten("nonzero"))
def nonzero(x):
    if _is_traced(x):
        raise _data_dependent(
            "torch.nonzero (and argwhere)",
            "torch.nonzero_static(x, size=max_count, fill_value=-1) pads the result to a fixed size.",
        )
    return jnp.asarray(np.argwhere(np.asarray(x)), jnp.int64)


@register(*aten("nonzero_static"))
def nonzero_static(x, *, size, fill_value=-1):
    if x.ndim == 0:
        return jnp.zeros((size, 0), jnp.int64)
    where = jnp.nonzero(x, size=size, fill_value=fill_value)
    return jnp.stack(where, axis=1).astype(jnp.int64)


@register(*aten("repeat_interleave", "Tensor"))
def repeat_interleave(repeats, *, output_size=None):
    """``[0]*repeats[0] + [1]*repeats[1] + ...``; its length must be static."""
    if output_size is None:
        if _is_traced(repeats):
            raise _data_dependent(
                "torch.repeat_interleave with tensor repeats",
                "pass output_size=<total number of repeats>, or repeat by a Python int.",
            )
        output_size = int(np.sum(np.asarray(repeats)))
    positions = jnp.arange(repeats.shape[0] if repeats.ndim else 1, dtype=jnp.int64)
    return jnp.repeat(positions, repeats.reshape(-1), total_repeat_length=output_size)


# --------------------------------------------------------------------------- take, put


@register(*aten("take"))
def take(x, index):
    return x.reshape(-1)[index]


@register(*aten("put"))
def put(x, index, source, accumulate=False):
    flat, at, source = x.reshape(-1), index.reshape(-1), source.reshape(-1).astype(x.dtype)
    out = _accumulate(flat, at, source) if accumulate else flat.at[at].set(source)
    return out.reshape(x.shape)


# --------------------------------------------------------------------------- sorted search


def _search(boundaries, values, right: bool, out_int32: bool, side=None, sorter=None):
    if side is not None:
        if side not in ("left", "right"):
            raise RuntimeError(f"side can only be 'left' or 'right' but got {side}")
        if right and side == "left":
            raise RuntimeError("side and right can't be set to opposites, got side of left while right was True")
        right = side == "right"
    if sorter is not None:
        boundaries = jnp.take_along_axis(boundaries, sorter, axis=-1)
    dtype = promote(boundaries, values, kind=Kind.NO_OPMATH)[0]
    boundaries, values = boundaries.astype(dtype), values.astype(dtype)
    side = "right" if right else "left"
    if boundaries.ndim <= 1:
        out = jnp.searchsorted(boundaries, values, side=side)
    else:
        if boundaries.shape[:-1] != values.shape[:-1]:
            raise RuntimeError(
                "torch.searchsorted(): boundaries tensor should be 1 dimension or the first N-1 dimensions "
                f"of boundaries tensor and input value tensor must match, but we got boundaries tensor "
                f"{list(boundaries.shape)} and input value tensor {list(values.shape)}"
            )
        batched = jnp.vectorize(lambda b, v: jnp.searchsorted(b, v, side=side), signature="(n),(m)->(m)")
        out = batched(boundaries, values)
    return out.astype(jnp.int32 if out_int32 else jnp.int64)


@register(*aten("searchsorted", "Tensor", "Scalar"))
def searchsorted(sorted_sequence, values, *, out_int32=False, right=False, side=None, sorter=None):
    values = jnp.asarray(values) if not hasattr(values, "dtype") else values
    if not hasattr(values, "ndim") or values.ndim == 0:
        if sorted_sequence.ndim > 1:
            raise RuntimeError(
                "torch.searchsorted(): input value can be a scalar only when boundaries tensor dimension is 1"
            )
    return _search(sorted_sequence, values, right, out_int32, side, sorter)


@register(*aten("bucketize", "Tensor", "Scalar"))
def bucketize(values, boundaries, *, out_int32=False, right=False):
    if boundaries.ndim != 1:
        raise RuntimeError(f"boundaries tensor must be 1 dimension, but got dim({boundaries.ndim})")
    values = values if hasattr(values, "dtype") else jnp.asarray(values)
    return _search(boundaries, values, right, out_int32)
