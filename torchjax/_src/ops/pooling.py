"""Max/avg/adaptive pooling and upsampling over the trailing 1, 2 or 3 spatial dims.

Windows are gathered explicitly (index arrays per spatial dim), so max pooling returns
torch's indices (first maximum, NaN wins, flattened over the input plane) and its
gradient flows to exactly the element torch picks.
"""

from __future__ import annotations

import functools
import itertools
import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..registry import aten, register


def _tuple(v, n, default=None):
    if v is None or (isinstance(v, (list, tuple)) and len(v) == 0):
        v = default
    v = tuple(v) if isinstance(v, (list, tuple)) else (v,)
    return v * n if len(v) == 1 else v


def _pool_out_size(size, k, s, p, d, ceil_mode):
    span = size + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1  # the last window must start inside the input or the left padding
    return out


def _window_index(size, k, s, p, d, ceil_mode):
    """(out, k) input positions of each window, and whether each lies inside the input."""
    out = _pool_out_size(size, k, s, p, d, ceil_mode)
    pos = jnp.arange(out)[:, None] * s - p + jnp.arange(k)[None, :] * d
    valid = (pos >= 0) & (pos < size)
    return jnp.clip(pos, 0, size - 1), valid


def _gather_windows(x, positions, fill):
    """x[..., *spatial] -> x[..., out1, k1, out2, k2, ...] with ``fill`` outside the input."""
    n = len(positions)
    lead = x.ndim - n
    idx, mask = [], None
    for i, (pos, valid) in enumerate(positions):
        shape = [1] * (2 * n)
        shape[2 * i], shape[2 * i + 1] = pos.shape
        idx.append(pos.reshape(shape))
        v = valid.reshape(shape)
        mask = v if mask is None else mask & v
    windows = x[(Ellipsis, *idx)] if lead else x[tuple(idx)]
    return jnp.where(mask, windows, fill)


def _window_axes(n, lead):
    """Move the window axes (k1, k2, ...) of a gathered array to the end, flattened."""
    outs = [lead + 2 * i for i in range(n)]
    ks = [lead + 2 * i + 1 for i in range(n)]
    return list(range(lead)) + outs + ks


def _window_slices(padded, k, s, d, outs):
    """Each window offset's strided slice of ``padded``, in torch's (row-major) scan order."""
    n = len(k)
    lead = padded.ndim - n
    for offset in itertools.product(*(range(kk) for kk in k)):
        start = [o * dd for o, dd in zip(offset, d)]
        limit = [st + (o - 1) * ss + 1 for st, o, ss in zip(start, outs, s)]
        yield lax.slice(padded, (0,) * lead + tuple(start), padded.shape[:lead] + tuple(limit), (1,) * lead + s)


def _pad_windows(x, fill, k, s, p, d, outs):
    """Pad the spatial dims with ``fill``: ``p`` on the left, on the right what ceil_mode's windows need."""
    n = len(k)
    spatial = x.shape[-n:]
    right = [
        max(0, (o - 1) * ss + dd * (kk - 1) + 1 - size - pp)
        for o, ss, dd, kk, size, pp in zip(outs, s, d, k, spatial, p)
    ]
    pads = [(0, 0, 0)] * (x.ndim - n) + [(pp, r, 0) for pp, r in zip(p, right)]
    return lax.pad(x, jnp.array(fill, x.dtype), pads)


@partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def _max_values(x, best_offset, geometry, fill):
    # reduce_window, not a select chain: XLA fuses a select chain into consumers that
    # broadcast it (a per-sample linear-layer gradient) and recomputes it per element.
    k, s, p, d, outs = geometry
    lead = x.ndim - len(k)
    padded = _pad_windows(x, fill, *geometry)
    return lax.reduce_window(
        padded, jnp.array(fill, x.dtype), lax.max, (1,) * lead + k, (1,) * lead + s, window_dilation=(1,) * lead + d
    )


@_max_values.defjvp
def _max_values_jvp(geometry, fill, primals, tangents):
    # the tangent of the element torch picks: a select per window offset, whose transpose is cheap
    x, best_offset = primals
    out = _max_values(x, best_offset, geometry, fill)
    tangent = None
    for t, window in enumerate(_window_slices(_pad_windows(tangents[0], 0, *geometry), *geometry[:2], *geometry[3:])):
        tangent = window if tangent is None else jnp.where(best_offset == t, window, tangent)
    return out, tangent


def _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, n):
    # The first maximum of each window found by a running compare over the window's
    # strided slices (elementwise, one fused pass); a gathered window and its
    # scatter-add gradient cost several times more on CPU.
    k = _tuple(kernel_size, n)
    s = _tuple(stride, n, default=k)
    p = _tuple(padding, n)
    d = _tuple(dilation, n)
    spatial = x.shape[-n:]
    lead = x.ndim - n
    outs = tuple(_pool_out_size(*args, ceil_mode) for args in zip(spatial, k, s, p, d))
    floating = jnp.issubdtype(x.dtype, jnp.floating)
    lowest = -np.inf if floating else np.iinfo(x.dtype).min
    padded = _pad_windows(lax.stop_gradient(x), lowest, k, s, p, d, outs)
    best = best_offset = None
    for t, value in enumerate(_window_slices(padded, k, s, d, outs)):
        if best is None:
            best, best_offset = value, jnp.zeros(value.shape, jnp.int32)
            continue
        # torch keeps the first maximum, and the first NaN over any number
        take = value > best
        if floating:
            take = take | (jnp.isnan(value) & ~jnp.isnan(best))
        best = jnp.where(take, value, best)
        best_offset = jnp.where(take, jnp.int32(t), best_offset)
    # the window offset -> an index into the flattened input plane
    flat_index = jnp.zeros(best_offset.shape, jnp.int64)
    for i in range(n):
        within = (best_offset // math.prod(k[i + 1 :])) % k[i]
        out_i = jnp.arange(outs[i]).reshape([-1 if j == lead + i else 1 for j in range(best.ndim)])
        flat_index = flat_index * spatial[i] + out_i * s[i] - p[i] + within * d[i]
    return _max_values(x, best_offset, (k, s, p, d, outs), lowest), flat_index


def _max_pool_rule(n):
    def rule(self, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
        return _max_pool(self, kernel_size, stride, padding, dilation, ceil_mode, n)

    return rule


register(*aten("max_pool2d_with_indices"))(_max_pool_rule(2))
register(*aten("max_pool3d_with_indices"))(_max_pool_rule(3))


def _max_pool_backward(n):
    def rule(grad_output, self, kernel_size, stride, padding, dilation, ceil_mode, indices):
        lead = self.ndim - n
        plane = jnp.zeros((*self.shape[:lead], math.prod(self.shape[lead:])), grad_output.dtype)
        g = grad_output.reshape(*self.shape[:lead], -1)
        idx = indices.reshape(*self.shape[:lead], -1)
        out = jax.vmap(lambda p, i, v: p.at[i].add(v))(
            plane.reshape(-1, plane.shape[-1]), idx.reshape(-1, idx.shape[-1]), g.reshape(-1, g.shape[-1])
        )
        return out.reshape(self.shape)

    return rule


register(*aten("max_pool2d_with_indices_backward"))(_max_pool_backward(2))
register(*aten("max_pool3d_with_indices_backward"))(_max_pool_backward(3))


# --------------------------------------------------------------------------- average


def _avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, n):
    k = _tuple(kernel_size, n)
    s = _tuple(stride, n, default=k)
    p = _tuple(padding, n)
    spatial = x.shape[-n:]
    outs = [_pool_out_size(size, kk, ss, pp, 1, ceil_mode) for size, kk, ss, pp in zip(spatial, k, s, p)]
    acc = jnp.float32 if x.dtype in (jnp.bfloat16, jnp.float16) else x.dtype
    lead = x.ndim - n
    extra = [max(0, (o - 1) * ss + kk - (size + 2 * pp)) for o, ss, kk, size, pp in zip(outs, s, k, spatial, p)]
    pads = [(0, 0)] * lead + [(pp, pp + e) for pp, e in zip(p, extra)]
    window = (1,) * lead + k
    strides = (1,) * lead + s
    total = lax.reduce_window(x.astype(acc), np.zeros((), acc), lax.add, window, strides, pads)
    if divisor_override:
        return (total / divisor_override).astype(x.dtype)
    # torch's divisor: the window clipped to the padded input (count_include_pad) or to the input
    ones = jnp.ones(spatial, acc)
    if count_include_pad:
        ones = jnp.pad(ones, [(pp, pp) for pp in p], constant_values=1)
        count = lax.reduce_window(ones, np.zeros((), acc), lax.add, k, s, [(0, e) for e in extra])
    else:
        count = lax.reduce_window(ones, np.zeros((), acc), lax.add, k, s, pads[lead:])
    out = total / count
    if jnp.issubdtype(x.dtype, jnp.integer):
        return jnp.trunc(out).astype(x.dtype)
    return out.astype(x.dtype)


def _avg_pool_rule(n):
    def rule(self, kernel_size, stride=(), padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None):
        return _avg_pool(self, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, n)

    return rule


register(*aten("avg_pool2d"))(_avg_pool_rule(2))
register(*aten("avg_pool3d"))(_avg_pool_rule(3))


def _avg_pool_backward(n):
    def rule(grad_output, self, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
        def forward(x):
            return _avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, n)

        return jax.vjp(forward, self)[1](grad_output)[0]

    return rule


register(*aten("avg_pool2d_backward"))(_avg_pool_backward(2))
register(*aten("avg_pool3d_backward"))(_avg_pool_backward(3))


# --------------------------------------------------------------------------- unpooling


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def _unpool(values, flat_index, plane_size):
    """(rows, k) values written at (rows, k) indices into (rows, plane_size) zeros."""
    rows = jnp.arange(values.shape[0])[:, None]
    return jnp.zeros((values.shape[0], plane_size), values.dtype).at[rows, flat_index].set(values)


def _unpool_fwd(values, flat_index, plane_size):
    return _unpool(values, flat_index, plane_size), flat_index


def _unpool_bwd(plane_size, flat_index, g):
    # torch's backward gathers at the indices: with a repeated index every input that
    # wrote there gets its gradient, not only the one whose write survived
    return jnp.take_along_axis(g, flat_index, axis=-1), None


_unpool.defvjp(_unpool_fwd, _unpool_bwd)


def _max_unpool(x, indices, output_size, n):
    lead = x.shape[: x.ndim - n]
    values = x.reshape(math.prod(lead), -1)
    out = _unpool(values, indices.reshape(values.shape), math.prod(output_size))
    return out.reshape(*lead, *output_size)


@register(*aten("max_unpool2d"))
def max_unpool2d(self, indices, output_size):
    return _max_unpool(self, indices, tuple(output_size), 2)


@register(*aten("max_unpool3d"))
def max_unpool3d(self, indices, output_size, stride, padding):
    return _max_unpool(self, indices, tuple(output_size), 3)


# --------------------------------------------------------------------------- adaptive


def _adaptive_bounds(size, out):
    starts = [(i * size) // out for i in range(out)]
    ends = [-(-((i + 1) * size) // out) for i in range(out)]
    return starts, ends


def _adaptive_avg(x, output_size, n):
    out_sizes = [x.shape[-n + i] if o is None else o for i, o in enumerate(_tuple(output_size, n))]
    acc = jnp.float32 if x.dtype in (jnp.bfloat16, jnp.float16) else x.dtype
    y = x.astype(acc)
    for i, out in enumerate(out_sizes):
        axis = x.ndim - n + i
        size = x.shape[axis]
        starts, ends = _adaptive_bounds(size, out)
        # an (out, size) averaging matrix: each row is 1/len over its window
        rows = [[1.0 / (e - s) if s <= j < e else 0.0 for j in range(size)] for s, e in zip(starts, ends)]
        y = jnp.moveaxis(
            jnp.tensordot(y, jnp.asarray(rows, acc), axes=([axis], [1]), precision=lax.Precision.HIGHEST), -1, axis
        )
    return y.astype(x.dtype)


@register(*aten("_adaptive_avg_pool2d"))
def _adaptive_avg_pool2d(self, output_size):
    return _adaptive_avg(self, output_size, 2)


@register(*aten("_adaptive_avg_pool3d"))
def _adaptive_avg_pool3d(self, output_size):
    return _adaptive_avg(self, output_size, 3)


def _adaptive_avg_backward(n):
    def rule(grad_output, self):
        return jax.vjp(lambda x: _adaptive_avg(x, grad_output.shape[-n:], n), self)[1](grad_output)[0]

    return rule


register(*aten("_adaptive_avg_pool2d_backward"))(_adaptive_avg_backward(2))
register(*aten("_adaptive_avg_pool3d_backward"))(_adaptive_avg_backward(3))


def _adaptive_max(x, output_size, n):
    out_sizes = _tuple(output_size, n)
    positions = []
    for i, out in enumerate(out_sizes):
        size = x.shape[x.ndim - n + i]
        starts, ends = _adaptive_bounds(size, out)
        k = max(e - s for s, e in zip(starts, ends))
        # windows shorter than k repeat their last element: harmless for a max, and the
        # repeat comes after the original, so the first maximum still wins
        pos = jnp.asarray([[min(s + j, e - 1) for j in range(k)] for s, e in zip(starts, ends)])
        positions.append((pos, jnp.ones(pos.shape, bool)))
    windows = _gather_windows(lax.stop_gradient(x), positions, 0)
    lead = x.ndim - n
    windows = windows.transpose(_window_axes(n, lead))
    out_shape = windows.shape[: lead + n]
    flat = windows.reshape(*out_shape, -1)
    if jnp.issubdtype(x.dtype, jnp.floating):
        nan = jnp.isnan(flat)
        best = jnp.where(jnp.any(nan, -1), jnp.argmax(nan, -1), jnp.argmax(flat, -1))
    else:
        best = jnp.argmax(flat, -1)
    ks = [pos.shape[1] for pos, _ in positions]
    unravel = jnp.unravel_index(best, ks)
    flat_index = jnp.zeros(best.shape, jnp.int64)
    for i, (pos, _) in enumerate(positions):
        out_i = jnp.arange(out_shape[lead + i]).reshape([-1 if j == lead + i else 1 for j in range(len(out_shape))])
        flat_index = flat_index * x.shape[lead + i] + pos[out_i, unravel[i]]
    plane = x.reshape(*x.shape[:lead], -1)
    values = jnp.take_along_axis(plane, flat_index.reshape(*x.shape[:lead], -1), axis=-1)
    return values.reshape(out_shape), flat_index


@register(*aten("adaptive_max_pool2d"))
def adaptive_max_pool2d(self, output_size):
    return _adaptive_max(self, output_size, 2)


@register(*aten("adaptive_max_pool3d"))
def adaptive_max_pool3d(self, output_size):
    return _adaptive_max(self, output_size, 3)


# --------------------------------------------------------------------------- upsampling


def _scales(in_sizes, out_sizes, scale_factors):
    """torch's source/dest ratio per dim: 1/scale_factor when given, else in/out."""
    if scale_factors:
        return [1.0 / f if f and f > 0 else i / o for f, i, o in zip(scale_factors, in_sizes, out_sizes)]
    return [i / o for i, o in zip(in_sizes, out_sizes)]


def _out_sizes(x, n, output_size, scale_factors):
    if output_size:
        return list(output_size)
    return [math.floor(s * f) for s, f in zip(x.shape[-n:], scale_factors)]


def _upsample_nearest(x, n, output_size, scale_factors, exact):
    outs = _out_sizes(x, n, output_size, scale_factors)
    scales = _scales(x.shape[-n:], outs, scale_factors)
    for i, (out, scale) in enumerate(zip(outs, scales)):
        axis = x.ndim - n + i
        size = x.shape[axis]
        offset = 0.5 if exact else 0.0
        src = jnp.floor((jnp.arange(out, dtype=jnp.float32) + offset) * jnp.float32(scale)).astype(jnp.int32)
        x = jnp.take(x, jnp.minimum(src, size - 1), axis=axis)
    return x


def _upsample_linear(x, n, output_size, align_corners, scale_factors):
    outs = _out_sizes(x, n, output_size, scale_factors)
    scales = _scales(x.shape[-n:], outs, scale_factors)
    acc = jnp.float32 if x.dtype in (jnp.bfloat16, jnp.float16) else x.dtype
    y = x.astype(acc)
    for i, (out, scale) in enumerate(zip(outs, scales)):
        axis = x.ndim - n + i
        size = x.shape[axis]
        dst = jnp.arange(out, dtype=acc)
        if align_corners:
            src = dst * ((size - 1) / (out - 1) if out > 1 else 0.0)
        else:
            src = jnp.maximum((dst + 0.5) * scale - 0.5, 0.0)
        i0 = jnp.minimum(jnp.floor(src).astype(jnp.int32), size - 1)
        i1 = jnp.minimum(i0 + 1, size - 1)
        lam = (src - i0).astype(acc)
        shape = [1] * y.ndim
        shape[axis] = out
        lam = lam.reshape(shape)
        y = jnp.take(y, i0, axis=axis) * (1 - lam) + jnp.take(y, i1, axis=axis) * lam
    return y.astype(x.dtype)


def _nearest_rule(n, exact):
    def vec(input, output_size, scale_factors):
        return _upsample_nearest(input, n, output_size, scale_factors, exact)

    def default(input, output_size, *scales):
        scales = [s for s in scales if s is not None] if any(s is not None for s in scales) else None
        return _upsample_nearest(input, n, output_size, scales if scales and len(scales) == n else None, exact)

    return vec, default


def _linear_rule(n):
    def vec(input, output_size, align_corners, scale_factors):
        return _upsample_linear(input, n, output_size, align_corners, scale_factors)

    def default(input, output_size, align_corners, *scales):
        scales = list(scales) if scales and all(s is not None for s in scales) else None
        return _upsample_linear(input, n, output_size, align_corners, scales)

    return vec, default


for _n, _name in ((1, "upsample_nearest1d"), (2, "upsample_nearest2d"), (3, "upsample_nearest3d")):
    for _exact, _prefix in ((False, ""), (True, "_")):
        _packet = _prefix + _name.replace("nearest", "nearest_exact") if _exact else _name
        _vec, _default = _nearest_rule(_n, _exact)
        register(*aten(_packet, "vec"))(_vec)
        register(*aten(_packet, "default"))(_default)

for _n, _name in ((1, "upsample_linear1d"), (2, "upsample_bilinear2d"), (3, "upsample_trilinear3d")):
    _vec, _default = _linear_rule(_n)
    register(*aten(_name, "vec"))(_vec)
    register(*aten(_name, "default"))(_default)


def _area_scale(in_size, out_size, align_corners, scale):
    """torch's area_pixel_compute_scale: the source step per output pixel."""
    if align_corners:
        return (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    return 1.0 / scale if scale is not None and scale > 0 else in_size / out_size


def _aa_weights(in_size, out_size, align_corners, scale, dtype):
    """The (out, in) matrix of torch's antialiased bilinear (triangle) filter, in ``dtype``.

    Built on the host in the same precision as torch's kernel builds it, so the windows
    (truncated to int) and the normalised weights agree.
    """
    scale = dtype(_area_scale(in_size, out_size, align_corners, scale))
    support = scale if scale >= 1 else dtype(1.0)  # interp_size / 2 * scale, interp_size = 2
    invscale = 1 / scale if scale >= 1 else dtype(1.0)
    weights = np.zeros((out_size, in_size), dtype)
    for i in range(out_size):
        center = scale * dtype(i + 0.5)
        lo = max(int(center - support + dtype(0.5)), 0)
        hi = min(int(center + support + dtype(0.5)), in_size)
        w = np.maximum(0, 1 - np.abs((np.arange(lo, hi, dtype=dtype) - center + dtype(0.5)) * invscale)).astype(dtype)
        total = w.sum(dtype=dtype)
        weights[i, lo:hi] = w / total if total != 0 else w
    return weights


def _upsample_bilinear_aa(x, output_size, align_corners, scales):
    acc = jnp.float32 if x.dtype in (jnp.bfloat16, jnp.float16) else x.dtype
    host = np.float64 if acc == jnp.float64 else np.float32
    y = x.astype(acc)
    # width first, then height, skipping a dim whose size does not change, as torch does
    for axis in (-1, -2):
        in_size, out_size = x.shape[axis], output_size[axis]
        if in_size == out_size:
            continue
        w = jnp.asarray(_aa_weights(in_size, out_size, align_corners, scales[axis] if scales else None, host))
        y = jnp.moveaxis(jnp.tensordot(y, w, axes=([y.ndim + axis], [1]), precision=lax.Precision.HIGHEST), -1, axis)
    return y.astype(x.dtype)


@register(*aten("_upsample_bilinear2d_aa"))
def _upsample_bilinear2d_aa(self, output_size, align_corners, scales_h=None, scales_w=None):
    scales = [scales_h, scales_w] if scales_h is not None or scales_w is not None else None
    return _upsample_bilinear_aa(self, list(output_size), align_corners, scales)


@register(*aten("_upsample_bilinear2d_aa", "vec"))
def _upsample_bilinear2d_aa_vec(input, output_size, align_corners, scale_factors):
    return _upsample_bilinear_aa(input, _out_sizes(input, 2, output_size, scale_factors), align_corners, scale_factors)


# --------------------------------------------------------------------------- fractional max


def _fractional_starts(sample, size, out, k):
    """torch's generate_intervals: each window's start along one dim, per (batch, plane).

    Computed in the samples' dtype, as torch does (``alpha`` and the products truncated
    to int), so the windows agree with torch's for the same ``random_samples``.
    """
    last = jnp.full((*sample.shape, 1), size - k, jnp.int32)
    if out <= 1:
        return last[..., :out]
    dt = jnp.float32 if sample.dtype in (jnp.bfloat16, jnp.float16) else sample.dtype
    u = sample.astype(dt)[..., None]
    alpha = jnp.asarray(size - k, dt) / jnp.asarray(out - 1, dt)
    i = jnp.arange(out - 1, dtype=dt)
    starts = jnp.trunc((i + u) * alpha).astype(jnp.int32) - jnp.trunc(u * alpha).astype(jnp.int32)
    return jnp.concatenate([starts, last], axis=-1)


def _fractional_max_pool(x, kernel_size, output_size, random_samples, n):
    unbatched = x.ndim == n + 1
    if unbatched:
        x = x[None]
    k, outs = _tuple(kernel_size, n), _tuple(output_size, n)
    batch, planes, spatial = x.shape[0], x.shape[1], x.shape[2:]
    # torch's samples per plane are (w, h) in 2d but (t, h, w) in 3d
    sample_of_dim = (1, 0) if n == 2 else tuple(range(n))
    flat_index = jnp.zeros((batch, planes) + (1,) * (2 * n), jnp.int64)
    for i in range(n):
        starts = _fractional_starts(random_samples[..., sample_of_dim[i]], spatial[i], outs[i], k[i])
        pos = starts[..., :, None] + jnp.arange(k[i], dtype=jnp.int32)  # (N, C, out_i, k_i)
        shape = [batch, planes] + [1] * (2 * n)
        shape[2 + i], shape[2 + n + i] = outs[i], k[i]
        flat_index = flat_index * spatial[i] + pos.reshape(shape).astype(jnp.int64)
    flat_index = jnp.broadcast_to(flat_index, (batch, planes, *outs, *k)).reshape(batch, planes, *outs, -1)
    plane = x.reshape(batch, planes, -1)
    windows = jnp.take_along_axis(plane, flat_index.reshape(batch, planes, -1), axis=-1).reshape(flat_index.shape)
    # torch scans each window in order and takes a strictly greater value or any NaN:
    # the first maximum, but the last NaN
    frozen = lax.stop_gradient(windows)
    best = jnp.argmax(frozen, axis=-1)
    if jnp.issubdtype(x.dtype, jnp.floating):
        nan = jnp.isnan(frozen)
        last_nan = nan.shape[-1] - 1 - jnp.argmax(nan[..., ::-1], axis=-1)
        best = jnp.where(jnp.any(nan, -1), last_nan, best)
    values = jnp.take_along_axis(windows, best[..., None], axis=-1)[..., 0]
    indices = jnp.take_along_axis(flat_index, best[..., None], axis=-1)[..., 0]
    if unbatched:
        return values[0], indices[0]
    return values, indices


@register(*aten("fractional_max_pool2d"))
def fractional_max_pool2d(self, kernel_size, output_size, random_samples):
    return _fractional_max_pool(self, kernel_size, output_size, random_samples, 2)


@register(*aten("fractional_max_pool3d"))
def fractional_max_pool3d(self, kernel_size, output_size, random_samples):
    return _fractional_max_pool(self, kernel_size, output_size, random_samples, 3)


# --------------------------------------------------------------------------- grid sampling

_BILINEAR, _NEAREST, _BICUBIC = 0, 1, 2
_ZEROS, _BORDER, _REFLECTION = 0, 1, 2


def _clip_coordinates(c, size):
    # where, not clip: torch's gradient is 0 at and beyond either bound
    return jnp.where(c <= 0, 0, jnp.where(c >= size - 1, size - 1, c)).astype(c.dtype)


def _reflect_coordinates(c, twice_low, twice_high):
    if twice_low == twice_high:
        return jnp.zeros_like(c)
    low, span = twice_low / 2, (twice_high - twice_low) / 2
    c = c - low
    c = jnp.where(c < 0, -c, c)
    extra = jnp.fmod(c, span)
    flips = jnp.floor(c / span)
    return jnp.where(jnp.fmod(flips, 2) == 0, extra + low, span - extra + low)


def _source_index(coord, size, padding_mode, align_corners):
    """torch's grid_sampler_compute_source_index: [-1, 1] -> pixel coordinates, padded."""
    return _pad_coordinates(_unnormalize(coord, size, align_corners), size, padding_mode, align_corners)


def _unnormalize(coord, size, align_corners):
    if align_corners:
        return (coord + 1) / 2 * (size - 1)
    return ((coord + 1) * size - 1) / 2


def _pad_coordinates(c, size, padding_mode, align_corners):
    """torch's compute_coordinates: pixel coordinates under the padding mode."""
    if padding_mode == _BORDER:
        c = _clip_coordinates(c, size)
    elif padding_mode == _REFLECTION:
        c = _reflect_coordinates(c, 0, 2 * (size - 1)) if align_corners else _reflect_coordinates(c, -1, 2 * size - 1)
        c = _clip_coordinates(c, size)
    return c


def _all(masks):
    out = masks[0]
    for m in masks[1:]:
        out = out & m
    return out


def _gather_taps(input, positions):
    """``input`` (N, C, *spatial) at integer ``positions`` (one (N, *out) array per spatial
    dim): the values (N, C, *out), and where the taps fall inside (N, 1, *out)."""
    spatial = input.shape[2:]
    inside = _all([(p >= 0) & (p < s) for p, s in zip(positions, spatial)])
    safe = [jnp.where(inside, p, 0).astype(jnp.int32) for p in positions]
    values = jax.vmap(lambda img, *idx: img[(slice(None), *idx)])(input, *safe)
    return values, inside[:, None]


def _grid_sample(input, grid, interpolation_mode, padding_mode, align_corners):
    """Sample (N, C, *spatial) at grid (N, *out, n) whose last axis is (x, y[, z]): x indexes the last dim."""
    n = grid.shape[-1]
    spatial = input.shape[2:]
    # coords[i] indexes spatial dim i (grid's coordinates come in reverse order)
    coords = [_source_index(grid[..., n - 1 - i], spatial[i], padding_mode, align_corners) for i in range(n)]
    gather = functools.partial(_gather_taps, input)

    if interpolation_mode == _NEAREST:
        values, inside = gather([jnp.round(c) for c in coords])  # nearbyint: half to even
        return jnp.where(inside, values, 0).astype(input.dtype)
    if interpolation_mode != _BILINEAR:
        raise NotImplementedError(f"grid_sampler_{n}d: interpolation_mode={interpolation_mode} (bicubic is 2-D only)")
    lows = [jnp.floor(c) for c in coords]
    out = jnp.zeros((), input.dtype)
    for corner in itertools.product((0, 1), repeat=n):
        positions = [lo + bit for lo, bit in zip(lows, corner)]
        # the weight is the volume of the opposite sub-box, as torch computes it
        weight = None
        for c, lo, bit in zip(coords, lows, corner):
            w = (c - lo) if bit else (lo + 1 - c)
            weight = w if weight is None else w * weight
        values, inside = gather([lax.stop_gradient(p) for p in positions])
        out = out + jnp.where(inside, values * weight[:, None], 0)
    return out.astype(input.dtype)


@register(*aten("grid_sampler_3d"))
def grid_sampler_3d(input, grid, interpolation_mode, padding_mode, align_corners):
    return _grid_sample(input, grid, interpolation_mode, padding_mode, align_corners)


@register(*aten("grid_sampler_2d"))
def grid_sampler_2d(input, grid, interpolation_mode, padding_mode, align_corners):
    if interpolation_mode == _BICUBIC:
        return _grid_sample_bicubic(input, grid, padding_mode, align_corners)
    return _grid_sample(input, grid, interpolation_mode, padding_mode, align_corners)


def _cubic_coefficients(t):
    """torch's get_cubic_upsample_coefficients (cubic convolution, A = -0.75) at offset t."""
    a = -0.75

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return far(t + 1), near(t), near(1 - t), far(2 - t)


def _grid_sample_bicubic(input, grid, padding_mode, align_corners):
    """torch's bicubic grid sampling: a 4x4 neighbourhood, padding applied to each tap."""
    h, w = input.shape[2:]
    x = _unnormalize(grid[..., 0], w, align_corners)
    y = _unnormalize(grid[..., 1], h, align_corners)
    x0, y0 = jnp.floor(x), jnp.floor(y)
    cx, cy = _cubic_coefficients(x - x0), _cubic_coefficients(y - y0)
    out = jnp.zeros((), input.dtype)
    for i in range(4):
        for j in range(4):
            px = lax.stop_gradient(_pad_coordinates(x0 - 1 + j, w, padding_mode, align_corners))
            py = lax.stop_gradient(_pad_coordinates(y0 - 1 + i, h, padding_mode, align_corners))
            values, inside = _gather_taps(input, [py, px])
            out = out + jnp.where(inside, values * (cx[j] * cy[i])[:, None], 0)
    return out.astype(input.dtype)
