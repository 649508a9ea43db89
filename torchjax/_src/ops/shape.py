"""Shape ops: views (view, permute, select, slice, split, diagonal, as_strided, ...),
their ``*_copy`` twins, joins (cat, stack), padding, flips, repeats, triangles and the
``*_scatter`` inverses of views.

View rules only compute the view's value: the dispatcher tracks aliasing and writes
back through a view by applying the same rule to an index map of the base, so every
view rule here must be a pure rearrangement of elements (no arithmetic on values).
A ``*_copy`` overload shares its view's rule: as a non-view op it simply returns it.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..errors import TracingError
from ..registry import aten, register
from ._common import Kind, canonical_dim, jdtype, promote

# --------------------------------------------------------------------------- helpers


def _dim(dim: int, ndim: int) -> int:
    return canonical_dim(dim, ndim)


def _infer_shape(shape, numel: int) -> tuple[int, ...]:
    """``shape`` with its one ``-1`` resolved, checked against ``numel`` as torch does."""
    shape = [int(s) for s in shape]
    if shape.count(-1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    if -1 in shape:
        known = math.prod(s for s in shape if s != -1)
        if known == 0 or numel % known:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
        shape[shape.index(-1)] = numel // known
    if math.prod(shape) != numel:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
    return tuple(shape)


def _view_and_copy(name: str, *overloads: str):
    """Register a rule for a view op and for its ``name_copy`` twin."""
    return register(*aten(name, *overloads), *aten(f"{name}_copy", *overloads))


def _index_map(x) -> jnp.ndarray:
    """Each element's flat position in ``x``: a view rule applied to it says where the view reads."""
    return jnp.arange(x.size, dtype=jnp.int64 if x.size > 2**31 - 1 else jnp.int32).reshape(x.shape)


def _scatter_through(x, src, view_rule, *args):
    """``x`` with the elements that ``view_rule(x, *args)`` reads replaced by ``src``."""
    where = view_rule(_index_map(x), *args)
    src = jnp.broadcast_to(src.astype(x.dtype), where.shape)
    return x.reshape(-1).at[where.reshape(-1)].set(src.reshape(-1)).reshape(x.shape)


# --------------------------------------------------------------------------- reshapes


@_view_and_copy("view", "default")
def view(x, size):
    return x.reshape(_infer_shape(size, x.size))


@register(*aten("_unsafe_view"), *aten("_reshape_alias"))
def _unsafe_view(x, size, stride=None):
    # JaxTensors are always contiguous, so the strides of _reshape_alias add nothing.
    return x.reshape(_infer_shape(size, x.size))


@_view_and_copy("view", "dtype")
def view_dtype(x, dtype):
    """Reinterpret the bytes: a smaller itemsize grows the last dim, a larger one shrinks it."""
    new = jdtype(dtype)
    if new == x.dtype:
        return x
    # lax bitcasts do not take bool; a bool byte is a uint8 holding 0 or 1.
    src = x.astype(jnp.uint8) if x.dtype == jnp.bool_ else x
    tgt = jnp.uint8 if new == jnp.bool_ else new
    old_size, new_size = src.dtype.itemsize, jnp.dtype(tgt).itemsize
    if old_size != new_size and x.ndim == 0:
        raise RuntimeError(f"self.dim() cannot be 0 to view {x.dtype} as {new} (different element sizes)")
    if old_size > new_size:
        out = lax.bitcast_convert_type(src, tgt)
        out = out.reshape(*x.shape[:-1], x.shape[-1] * (old_size // new_size))
    elif old_size < new_size:
        ratio = new_size // old_size
        if x.shape[-1] % ratio:
            raise RuntimeError(f"self.size(-1) must be divisible by {ratio} to view {x.dtype} as {new}")
        out = lax.bitcast_convert_type(src.reshape(*x.shape[:-1], x.shape[-1] // ratio, ratio), tgt)
    else:
        out = lax.bitcast_convert_type(src, tgt)
    return out != 0 if new == jnp.bool_ else out


@_view_and_copy("alias", "default")
def alias(x):
    return x


@_view_and_copy("permute", "default")
def permute(x, dims):
    dims = tuple(_dim(d, x.ndim) for d in dims)
    if sorted(dims) != list(range(x.ndim)):
        raise RuntimeError(f"permute(): dims {list(dims)} are not a permutation of {x.ndim} dims")
    return jnp.transpose(x, dims)


@_view_and_copy("transpose", "int")
def transpose(x, dim0, dim1):
    if x.ndim == 0:
        _dim(dim0, 0), _dim(dim1, 0)
        return x
    return jnp.swapaxes(x, _dim(dim0, x.ndim), _dim(dim1, x.ndim))


@_view_and_copy("t", "default")
def t(x):
    if x.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {x.ndim}D")
    return x.T


@_view_and_copy("expand", "default")
def expand(x, size, *, implicit=False):
    size = [int(s) for s in size]
    if len(size) < x.ndim:
        raise RuntimeError(
            f"expand: the number of sizes provided ({len(size)}) must be greater or equal to "
            f"the number of dimensions in the tensor ({x.ndim})"
        )
    lead = len(size) - x.ndim
    shape = tuple(x.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(size))
    return jnp.broadcast_to(x, shape)


@_view_and_copy("squeeze", "default", "dim", "dims")
def squeeze(x, dim=None):
    if dim is None:
        dims = range(x.ndim)
    else:
        dims = {_dim(d, x.ndim) for d in ([dim] if isinstance(dim, int) else dim)}
    return jnp.squeeze(x, tuple(d for d in dims if x.ndim and x.shape[d] == 1))


@_view_and_copy("unsqueeze", "default")
def unsqueeze(x, dim):
    return jnp.expand_dims(x, _dim(dim, x.ndim + 1))


# --------------------------------------------------------------------------- selections


def _bound_index(index: int, size: int, dim: int) -> int:
    if not -size <= index < size:
        raise IndexError(f"index {index} is out of bounds for dimension {dim} with size {size}")
    return index % size


@_view_and_copy("select", "int")
def select(x, dim, index):
    if x.ndim == 0:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    dim = _dim(dim, x.ndim)
    return lax.index_in_dim(x, _bound_index(int(index), x.shape[dim], dim), dim, keepdims=False)


def _slice_bounds(size: int, start, end, step) -> tuple[int, int, int]:
    if step <= 0:
        raise RuntimeError("slice step must be positive")
    start, stop, _ = slice(start, end, 1).indices(size)
    return start, max(start, stop), step


@_view_and_copy("slice", "Tensor")
def slice_(x, dim=0, start=None, end=None, step=1):
    dim = _dim(dim, x.ndim)
    start, stop, step = _slice_bounds(x.shape[dim], start, end, step)
    return lax.slice_in_dim(x, start, stop, step, axis=dim)


@register(*aten("narrow_copy"))
def narrow_copy(x, dim, start, length):
    dim = _dim(dim, x.ndim)
    start = start % x.shape[dim] if start < 0 else start
    return lax.slice_in_dim(x, start, start + length, axis=dim)


def _split_sizes(size: int, split_size: int) -> list[int]:
    if split_size == 0 and size != 0:
        raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got dimension size of {size}")
    chunks = max(-(-size // split_size) if split_size else 1, 1)
    return [split_size] * (chunks - 1) + [size - split_size * (chunks - 1)]


@_view_and_copy("split_with_sizes", "default")
def split_with_sizes(x, split_sizes, dim=0):
    dim = _dim(dim, x.ndim)
    if sum(split_sizes) != x.shape[dim]:
        raise RuntimeError(
            f"split_with_sizes expects split_sizes to sum exactly to {x.shape[dim]} "
            f"(input tensor's size at dimension {dim}), but got split_sizes={list(split_sizes)}"
        )
    offsets = np.cumsum([0, *split_sizes])
    return [lax.slice_in_dim(x, int(a), int(b), axis=dim) for a, b in zip(offsets[:-1], offsets[1:])]


@_view_and_copy("split", "Tensor")
def split(x, split_size, dim=0):
    dim = _dim(dim, x.ndim)
    return split_with_sizes(x, _split_sizes(x.shape[dim], int(split_size)), dim)


# tensor_split is CompositeImplicit in torch; its rules serve callers that reach the
# overloads directly (the tensor overload's C++ reads the split points from memory).
@register(*aten("tensor_split", "indices"))
def tensor_split_indices(x, indices, dim=0):
    dim = _dim(dim, x.ndim)
    bounds = [0, *(int(i) for i in indices), x.shape[dim]]
    return [slice_(x, dim, a, b) for a, b in zip(bounds[:-1], bounds[1:])]


@register(*aten("tensor_split", "sections"))
def tensor_split_sections(x, sections, dim=0):
    if sections <= 0:
        raise RuntimeError(f"number of sections must be larger than 0, got {sections}")
    dim = _dim(dim, x.ndim)
    size, extra = divmod(x.shape[dim], int(sections))
    sizes = [size + 1] * extra + [size] * (int(sections) - extra)
    return tensor_split_indices(x, np.cumsum(sizes)[:-1].tolist(), dim)


@register(*aten("tensor_split", "tensor_indices_or_sections"))
def tensor_split_tensor(x, tensor_indices_or_sections, dim=0):
    """The split points are values, so the output shapes are known only for a concrete tensor."""
    points = tensor_indices_or_sections
    if points.dtype != jnp.int64:
        raise RuntimeError(
            f"tensor_split expected tensor_indices_or_sections to have dtype of long, but got {points.dtype}"
        )
    if points.ndim > 1:
        raise RuntimeError(
            "tensor_split expected tensor_indices_or_sections to be a zero-dimensional or "
            f"one-dimensional tensor, but got a tensor with {points.ndim} dims"
        )
    if isinstance(points, jax.core.Tracer):
        raise TracingError(
            "torchjax: torch.tensor_split with a tensor of split points has output shapes that "
            "depend on that tensor's values, which XLA cannot compile: every shape must be known "
            "while tracing.\nInstead: pass the split points as Python ints "
            "(torch.tensor_split(x, [1, 2, 3]) or torch.tensor_split(x, 3))."
        )
    if points.ndim == 0:
        return tensor_split_sections(x, int(points), dim)
    return tensor_split_indices(x, np.asarray(points).tolist(), dim)


@_view_and_copy("unbind", "int")
def unbind(x, dim=0):
    dim = _dim(dim, x.ndim)
    return [lax.index_in_dim(x, i, dim, keepdims=False) for i in range(x.shape[dim])]


@_view_and_copy("diagonal", "default")
def diagonal(x, offset=0, dim1=0, dim2=1):
    dim1, dim2 = _dim(dim1, x.ndim), _dim(dim2, x.ndim)
    if dim1 == dim2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    return jnp.diagonal(x, offset, dim1, dim2)


@_view_and_copy("as_strided", "default")
def as_strided(x, size, stride, storage_offset=None):
    """Read ``x`` as if it were laid out contiguously (every JaxTensor is)."""
    offset = storage_offset or 0
    where = np.full(tuple(size), offset, dtype=np.int64)
    for d, (n, s) in enumerate(zip(size, stride)):
        where = where + (np.arange(n) * s).reshape((n,) + (1,) * (len(size) - d - 1))
    if where.size and (where.min() < 0 or where.max() >= x.size):
        raise RuntimeError(
            f"setStorage: sizes {list(size)}, strides {list(stride)}, storage offset {offset} "
            f"are out of bounds for storage of {x.size} elements"
        )
    return x.reshape(-1)[where] if where.size else jnp.zeros(tuple(size), x.dtype)


@_view_and_copy("unfold", "default")
def unfold(x, dimension, size, step):
    if x.ndim == 0:
        return jnp.broadcast_to(x, (size,))
    dim = _dim(dimension, x.ndim)
    count = (x.shape[dim] - size) // step + 1
    if count < 0 or size < 0:
        raise RuntimeError(f"maximum size for tensor at dimension {dim} is {x.shape[dim]} but size is {size}")
    windows = np.arange(count)[:, None] * step + np.arange(size)[None, :]
    return jnp.moveaxis(jnp.take(x, windows, axis=dim), dim + 1, -1)


# These two reinterpret values, so the dispatcher's integer index map cannot pass
# through them: torch's own dtype checks make a write through them fail loudly.
_NO_WRITE = " (torchjax cannot write through this view: write to the complex tensor instead)"


@_view_and_copy("view_as_real", "default")
def view_as_real(x):
    if not jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise RuntimeError("view_as_real is only supported for complex tensors" + _NO_WRITE)
    return jnp.stack([jnp.real(x), jnp.imag(x)], axis=-1)


@_view_and_copy("view_as_complex", "default")
def view_as_complex(x):
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise RuntimeError("view_as_complex is only supported for floating point tensors" + _NO_WRITE)
    if x.ndim == 0 or x.shape[-1] != 2:
        raise RuntimeError("Tensor must have a last dimension of size 2")
    return lax.complex(x[..., 0], x[..., 1])


# --------------------------------------------------------------------------- *_scatter


@register(*aten("select_scatter"))
def select_scatter(x, src, dim, index):
    dim = _dim(dim, x.ndim)
    index = _bound_index(int(index), x.shape[dim], dim)
    return lax.dynamic_update_index_in_dim(x, src.astype(x.dtype), index, dim)


@register(*aten("slice_scatter"))
def slice_scatter(x, src, dim=0, start=None, end=None, step=1):
    dim = _dim(dim, x.ndim)
    start, stop, step = _slice_bounds(x.shape[dim], start, end, step)
    at = (slice(None),) * dim + (slice(start, stop, step),)
    return x.at[at].set(src.astype(x.dtype))


@register(*aten("diagonal_scatter"))
def diagonal_scatter(x, src, offset=0, dim1=0, dim2=1):
    return _scatter_through(x, src, diagonal, offset, dim1, dim2)


@register(*aten("as_strided_scatter"))
def as_strided_scatter(x, src, size, stride, storage_offset=None):
    return _scatter_through(x, src, as_strided, size, stride, storage_offset)


# --------------------------------------------------------------------------- joins


def _joined_dtype(tensors):
    return promote(*tensors, kind=Kind.NO_OPMATH)[1] if tensors else jnp.float32


@register(*aten("cat"))
def cat(tensors, dim=0):
    dtype = _joined_dtype(tensors)
    # torch skips 1-d empty tensors, whatever the others' shapes (legacy behaviour).
    parts = [t.astype(dtype) for t in tensors if not (t.ndim == 1 and t.shape[0] == 0)]
    if not parts:
        return jnp.zeros((0,), dtype)
    dim = _dim(dim, parts[0].ndim)
    return jnp.concatenate(parts, axis=dim)


@register(*aten("stack"))
def stack(tensors, dim=0):
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    dtype = _joined_dtype(tensors)
    return jnp.stack([t.astype(dtype) for t in tensors], axis=_dim(dim, tensors[0].ndim + 1))


# --------------------------------------------------------------------------- flips, rolls, repeats


@register(*aten("flip"))
def flip(x, dims):
    axes = tuple({_dim(d, x.ndim) for d in dims})
    return jnp.flip(x, axes) if axes and x.ndim else x


@register(*aten("roll"))
def roll(x, shifts, dims=()):
    if not dims:
        return jnp.roll(x.reshape(-1), tuple(shifts)).reshape(x.shape)
    return jnp.roll(x, tuple(shifts), tuple(_dim(d, x.ndim) for d in dims))


@register(*aten("repeat"))
def repeat(x, repeats):
    repeats = tuple(int(r) for r in repeats)
    if len(repeats) < x.ndim:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number of dimensions of tensor")
    x = x.reshape((1,) * (len(repeats) - x.ndim) + x.shape)
    return jnp.tile(x, repeats)


def _triangle(keep_lower: bool):
    def rule(x, diagonal=0):
        if x.ndim < 2:
            raise RuntimeError(f"{'tril' if keep_lower else 'triu'}: input tensor must have at least 2 dimensions")
        rows, cols = x.shape[-2:]
        r = lax.broadcasted_iota(jnp.int64, (rows, cols), 0)
        c = lax.broadcasted_iota(jnp.int64, (rows, cols), 1)
        keep = (c - r <= diagonal) if keep_lower else (c - r >= diagonal)
        return jnp.where(keep, x, jnp.zeros((), x.dtype))

    rule.__name__ = "tril" if keep_lower else "triu"
    return rule


register(*aten("tril"))(_triangle(keep_lower=True))
register(*aten("triu"))(_triangle(keep_lower=False))


@register(*aten("diag_embed"))
def diag_embed(x, offset=0, dim1=-2, dim2=-1):
    ndim = x.ndim + 1
    dim1, dim2 = _dim(dim1, ndim), _dim(dim2, ndim)
    if dim1 == dim2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    m = x.shape[-1]
    n = m + abs(offset)
    rows, cols = np.arange(m) + max(-offset, 0), np.arange(m) + max(offset, 0)
    out = jnp.zeros((*x.shape[:-1], n, n), x.dtype).at[..., rows, cols].set(x)
    return jnp.moveaxis(out, (-2, -1), (dim1, dim2))


# --------------------------------------------------------------------------- padding


def _pad_pairs(pad, ndim: int) -> list[tuple[int, int]]:
    """torch's flat ``pad`` (last dim first, (left, right) each) as per-dim pairs of ``ndim`` dims."""
    if len(pad) % 2:
        raise RuntimeError("Length of pad must be even but instead it equals " + str(len(pad)))
    k = len(pad) // 2
    if k > ndim:
        raise RuntimeError(
            f"Length of pad should be no more than twice the number of dimensions of the input. "
            f"Pad length is {len(pad)} while the input has {ndim} dimensions."
        )
    pairs = [(0, 0)] * (ndim - k)
    return pairs + [(int(pad[2 * i]), int(pad[2 * i + 1])) for i in reversed(range(k))]


@register(*aten("constant_pad_nd"))
def constant_pad_nd(x, pad, value=0):
    pairs = _pad_pairs(pad, x.ndim)
    # lax.pad crops for negative padding, which is what torch does
    return lax.pad(x, jnp.asarray(value).astype(x.dtype), [(lo, hi, 0) for lo, hi in pairs])


def _reflect(j: np.ndarray, n: int) -> np.ndarray:
    j = np.abs(j)
    return np.where(j >= n, 2 * (n - 1) - j, j)


_PAD_INDEX = {
    "reflect": _reflect,
    "edge": lambda j, n: np.clip(j, 0, n - 1),
    "wrap": lambda j, n: np.mod(j, n),
}


def _index_pad(x, pairs, mode: str):
    """Pad by gathering each output position's source: exact for negative (cropping) pads too."""
    for axis, (lo, hi) in enumerate(pairs):
        if lo == 0 and hi == 0:
            continue
        n = x.shape[axis]
        out_n = n + lo + hi
        if out_n < 0:
            raise RuntimeError(f"padding ({lo}, {hi}) gives a negative output size for dimension of size {n}")
        x = jnp.take(x, _PAD_INDEX[mode](np.arange(out_n) - lo, n), axis=axis)
    return x


def _padder(mode: str, k: int):
    name = {"reflect": "reflection", "edge": "replication", "wrap": "circular"}[mode]

    def rule(x, padding):
        if len(padding) != 2 * k:
            raise RuntimeError(f"{name}_pad{k}d: padding size is expected to be {2 * k}")
        pairs = _pad_pairs(padding, x.ndim)
        for (lo, hi), n in zip(pairs, x.shape):
            if mode == "reflect" and (lo >= n or hi >= n) and (lo or hi):
                raise RuntimeError(
                    f"Argument #4: Padding size should be less than the corresponding input dimension, "
                    f"but got: padding ({lo}, {hi}) at dimension of size {n}"
                )
            if (lo or hi) and n == 0:
                raise RuntimeError(f"{name}_pad{k}d: cannot pad an empty dimension")
        if all(lo >= 0 and hi >= 0 for lo, hi in pairs):
            return jnp.pad(x, pairs, mode=mode)
        return _index_pad(x, pairs, mode)

    rule.__name__ = f"{name}_pad{k}d"
    return rule


for _k in (1, 2, 3):
    register(*aten(f"reflection_pad{_k}d"))(_padder("reflect", _k))
    register(*aten(f"replication_pad{_k}d"))(_padder("edge", _k))
