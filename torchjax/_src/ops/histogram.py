"""Histograms: histc, histogram (bin count or bin edges) and histogramdd's pieces.

The number of bins is static, so every output shape is known while tracing even when
the outer bin edges come from the data (``histc(x, min=0, max=0)``, ``histogram``
with no ``range``). The binning follows torch's CPU kernel step by step (same
arithmetic, in the input's dtype), so an element on a bin edge lands where torch puts
it: linear interpolation for histc, interpolation checked against the neighbouring
edges for a bin count, a binary search for explicit edges.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from ..registry import aten, register

# --------------------------------------------------------------------------- helpers


def _linspace(start, end, steps: int, dtype):
    """torch's CPU linspace kernel: stepped from both ends, so both ends are exact."""
    start, end = jnp.asarray(start, dtype), jnp.asarray(end, dtype)
    if steps == 1:
        return start.reshape(1)
    step = (end - start) / (steps - 1)
    idx = jnp.arange(steps).astype(dtype)
    return jnp.where(jnp.arange(steps) < steps // 2, start + step * idx, end - step * (steps - 1 - idx))


def _outer_edges(x, range_, widen: float):
    """Per-column (leftmost, rightmost) edges: ``range_`` or the data's min/max, widened if equal.

    ``x`` is (M, N); an empty input gets numpy's default range [0, 1].
    """
    n = x.shape[-1]
    if range_ is not None:
        if len(range_) != 2 * n:
            raise RuntimeError(
                f"torch.histogramdd: for a {n}-dimensional histogram range should have {2 * n} elements, "
                f"but got {len(range_)}"
            )
        lo = jnp.asarray([float(r) for r in range_[0::2]], jnp.float64)
        hi = jnp.asarray([float(r) for r in range_[1::2]], jnp.float64)
        if any(a > b for a, b in zip(range_[0::2], range_[1::2])):
            raise RuntimeError("torch.histogramdd: min should not exceed max")
    elif x.shape[0] == 0:
        lo, hi = jnp.zeros((n,), jnp.float64), jnp.ones((n,), jnp.float64)
    else:
        lo, hi = jnp.min(x, axis=0).astype(jnp.float64), jnp.max(x, axis=0).astype(jnp.float64)
    same = lo == hi
    return jnp.where(same, lo - widen, lo), jnp.where(same, hi + widen, hi)


def _edges_from_counts(x, bins, range_):
    lo, hi = _outer_edges(x, range_, widen=0.5)
    return [_linspace(lo[d], hi[d], int(b) + 1, x.dtype) for d, b in enumerate(bins)]


def _bin_positions(col, edges, algorithm: str):
    """Bin index of each element of ``col`` along one dimension, and whether it falls in a bin."""
    n_edges = edges.shape[0]
    left, right = edges[0], edges[-1]
    inside = (col >= left) & (col <= right)  # False for NaN too
    if algorithm == "search":
        pos = jnp.searchsorted(edges, col, side="right") - 1
    else:
        # torch: (elt - left) * (n_edges - 1) / (right - left), in the input's dtype, truncated
        scaled = (col - left) * jnp.asarray(n_edges - 1, col.dtype) / (right - left)
        pos = jnp.where(inside, scaled, 0).astype(jnp.int64)
        if algorithm == "local_search":
            # upper_bound over edges[pos - 1 : pos + 2]: count the window's edges <= elt
            found = jnp.maximum(pos - 1, 0) - 1
            for k in (-1, 0, 1):
                j = pos + k
                valid = (j >= jnp.maximum(pos - 1, 0)) & (j < jnp.minimum(pos + 2, n_edges))
                found = found + (valid & (edges[jnp.clip(j, 0, n_edges - 1)] <= col))
            pos = found
    # the last bin includes its right edge
    pos = jnp.where(pos == n_edges - 1, pos - 1, pos)
    return pos, inside


def _histogramdd(x, edges, weight, density: bool, algorithm: str):
    """The (len(edges[0]) - 1, ...) histogram of the rows of ``x`` (M, N)."""
    shape = tuple(e.shape[0] - 1 for e in edges)
    flat = jnp.zeros((), jnp.int64)
    keep = jnp.ones(x.shape[:1], bool)
    for d, e in enumerate(edges):
        pos, inside = _bin_positions(x[:, d], e.astype(x.dtype), algorithm)
        flat = flat * shape[d] + pos
        keep = keep & inside
    n_bins = math.prod(shape)
    wt = jnp.ones(x.shape[:1], x.dtype) if weight is None else weight.reshape(-1).astype(x.dtype)
    hist = jnp.zeros((n_bins,), x.dtype).at[jnp.where(keep, flat, n_bins)].add(wt, mode="drop")
    hist = hist.reshape(shape)
    if density:
        hist = hist / hist.sum()
        for d, e in enumerate(edges):
            lengths = jnp.diff(e.astype(x.dtype))
            hist = hist / lengths.reshape([-1 if k == d else 1 for k in range(len(edges))])
    return hist


def _rows(x):
    """torch views histogramdd's input as (M, N): N = the last dimension."""
    n = x.shape[-1] if x.ndim else 1
    return x.reshape(-1, n)


def _check_float(name: str, x):
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise RuntimeError(f"torch.{name}: input tensor and bins tensors should have the same dtype, floating point")


# --------------------------------------------------------------------------- histc, histogram


@register(*aten("histc"))
def histc(x, bins=100, min=0, max=0):
    _check_float("histc", x)
    if bins <= 0:
        raise RuntimeError(f"torch.histc: bins must be > 0, but got {bins} for dimension 0")
    col = x.reshape(-1, 1)
    lo, hi = float(min), float(max)
    if lo > hi:
        raise RuntimeError(f"torch.histc: max must be larger than min, but got min {lo} and max {hi}")
    if lo == hi and x.size:
        # torch then bins over the data's own range: its value, not its shape, depends on the data
        left, right = jnp.min(x).astype(jnp.float64), jnp.max(x).astype(jnp.float64)
    else:
        left, right = jnp.float64(lo), jnp.float64(hi)
    same = left == right
    left, right = jnp.where(same, left - 1, left), jnp.where(same, right + 1, right)
    edges = _linspace(left, right, bins + 1, x.dtype)
    return _histogramdd(col, [edges], None, False, "linear")


@register(*aten("histogram", "bin_ct"))
def histogram_bin_ct(x, bins=100, *, range=None, weight=None, density=False):
    _check_float("histogram", x)
    col = x.reshape(-1, 1)
    (edges,) = _edges_from_counts(col, [bins], range)
    return _histogramdd(col, [edges], weight, density, "local_search"), edges


@register(*aten("histogram", "bins_tensor"))
def histogram_bins_tensor(x, bins, *, weight=None, density=False):
    _check_float("histogram", x)
    return _histogramdd(x.reshape(-1, 1), [bins], weight, density, "search"), bins


# --------------------------------------------------------------------------- histogramdd (its three ATen pieces)


@register(*aten("_histogramdd_bin_edges"))
def _histogramdd_bin_edges(x, bins, *, range=None, weight=None, density=False):
    _check_float("histogramdd", x)
    return _edges_from_counts(_rows(x), bins, range)


@register(*aten("_histogramdd_from_bin_cts"))
def _histogramdd_from_bin_cts(x, bins, *, range=None, weight=None, density=False):
    _check_float("histogramdd", x)
    rows = _rows(x)
    return _histogramdd(rows, _edges_from_counts(rows, bins, range), weight, density, "local_search")


@register(*aten("_histogramdd_from_bin_tensors"))
def _histogramdd_from_bin_tensors(x, bins, *, weight=None, density=False):
    _check_float("histogramdd", x)
    return _histogramdd(_rows(x), list(bins), weight, density, "search")
