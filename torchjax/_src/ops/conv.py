"""Convolutions (1d/2d/3d, grouped, dilated, transposed) and their backward, plus col2im."""

from __future__ import annotations

import itertools
from functools import partial

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

from ..registry import aten, register

_HIGHEST = lax.Precision.HIGHEST


def _tuple(v, n):
    v = tuple(v) if isinstance(v, (list, tuple)) else (v,)
    return v * n if len(v) == 1 else v


def _dimension_numbers(n):
    spatial = "DHW"[-n:] if n <= 3 else None
    return (f"NC{spatial}", f"OI{spatial}", f"NC{spatial}")


def _transpose_kernel(weight, groups):
    """(C_in, C_out/g, *k) of a transposed conv -> the (C_out, C_in/g, *k) forward kernel, flipped."""
    c_in, c_out_g, *k = weight.shape
    w = weight.reshape(groups, c_in // groups, c_out_g, *k)
    w = jnp.swapaxes(w, 1, 2).reshape(groups * c_out_g, c_in // groups, *k)
    return jnp.flip(w, axis=tuple(range(2, 2 + len(k))))


def conv(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups):
    n = weight.ndim - 2
    unbatched = input.ndim == n + 1
    if unbatched:
        input = input[None]
    stride, padding, dilation = _tuple(stride, n), _tuple(padding, n), _tuple(dilation, n)
    acc = jnp.float32 if input.dtype in (jnp.bfloat16, jnp.float16) else None
    if transposed:
        output_padding = _tuple(output_padding, n)
        kernel = _transpose_kernel(weight, groups)
        k = weight.shape[2:]
        pads = [(d * (kk - 1) - p, d * (kk - 1) - p + op) for kk, p, d, op in zip(k, padding, dilation, output_padding)]
        out = lax.conv_general_dilated(
            input,
            kernel,
            window_strides=(1,) * n,
            padding=pads,
            lhs_dilation=stride,
            rhs_dilation=dilation,
            dimension_numbers=_dimension_numbers(n),
            feature_group_count=groups,
            precision=_HIGHEST,
            preferred_element_type=acc,
        )
    else:
        out = _forward_conv(input, weight, stride, padding, dilation, groups, acc)
    if bias is not None:
        out = out + bias.reshape((-1,) + (1,) * n).astype(out.dtype)
    out = out.astype(input.dtype)
    return out[0] if unbatched else out


def _native_conv(x, w, stride, padding, dilation, groups, acc):
    pads = [(p, p) for p in padding]
    # XLA:CPU runs an unpadded convolution 2-3x slower than a padded one (measured on a
    # 64x32x26x26 input, 64 3x3 filters: 33 ms vs 13 ms): pad one extra row at the end
    # and drop the output row it adds.
    valid_on_cpu = not any(padding) and jax.default_backend() == "cpu"
    if valid_on_cpu:
        pads[0] = (0, 1)
    out = lax.conv_general_dilated(
        x,
        w,
        window_strides=stride,
        padding=pads,
        rhs_dilation=dilation,
        dimension_numbers=_dimension_numbers(w.ndim - 2),
        feature_group_count=groups,
        precision=_HIGHEST,
        preferred_element_type=acc,
    )
    if valid_on_cpu:
        rows = (x.shape[2] - dilation[0] * (w.shape[2] - 1) - 1) // stride[0] + 1
        out = lax.slice_in_dim(out, 0, rows, axis=2)
    return out


def _conv_as_dots(x, w, stride, padding, dilation, groups, acc):
    """The same convolution as a sum over kernel offsets of (strided slice of x) · w[..., offset].

    Linear in ``w``, so its transpose (the weight gradient) is one dot per offset
    contracting over batch and output positions. Under ``vmap`` those become batched
    matmuls; XLA's own transpose of a convolution becomes a convolution with one group
    per sample there, which is several times slower on CPU (per-sample gradients).

    The offsets are a ``lax.scan``, so the transpose is a loop too: each step slices one
    window and feeds it to its dot while it is still in cache. Unrolled, XLA:CPU first
    copies out all the windows (for W1's 3x3 conv, 9 x 4.7 MB) and then runs the dots,
    1.6x slower.
    """
    x = jnp.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding])
    kernel = w.shape[2:]
    out_size = [(s - d * (k - 1) - 1) // st + 1 for s, k, d, st in zip(x.shape[2:], kernel, dilation, stride)]
    batch, cin = x.shape[:2]
    cout = w.shape[0]
    # channels last, so that a window is (positions, channels): the layout the dot of the
    # weight gradient reads without transposing it
    x = jnp.moveaxis(x.reshape(batch, groups, cin // groups, *x.shape[2:]), 2, -1)
    taps = w.reshape(groups, cout // groups, cin // groups, -1)
    taps = jnp.moveaxis(taps, -1, 0)  # (offsets, groups, cout/g, cin/g)
    offsets = jnp.asarray(list(itertools.product(*(range(k) for k in kernel))), jnp.int32)
    span = [(m - 1) * st + 1 for m, st in zip(out_size, stride)]
    zero = jnp.int32(0)

    def tap(total, step):
        offset, w_tap = step
        start = offset * jnp.asarray(dilation, jnp.int32)
        window = lax.dynamic_slice(x, (zero, zero, *start, zero), (*x.shape[:2], *span, x.shape[-1]))
        if any(st != 1 for st in stride):
            window = lax.slice(window, (0,) * window.ndim, window.shape, (1, 1, *stride, 1))
        term = lax.dot_general(
            w_tap, window, (((2,), (window.ndim - 1,)), ((0,), (1,))), precision=_HIGHEST, preferred_element_type=acc
        )  # (groups, cout/groups, batch, *out): in the transpose, the cotangent is already
        # (output channel, positions), the layout of a plain matmul against the window
        return total + term, None

    # Windows are sliced again in the transposed loop rather than saved from the forward
    # one: saved, all of them would be stacked (9 x 4.7 MB for W1) and read back.
    tap = jax.checkpoint(tap, policy=jax.checkpoint_policies.nothing_saveable)
    first = jax.eval_shape(lambda: tap(0, (offsets[0], taps[0]))[0])
    out, _ = lax.scan(tap, jnp.zeros(first.shape, first.dtype), (offsets, taps))
    out = out.reshape(cout, batch, *out_size)
    return jnp.swapaxes(out, 0, 1)


@partial(jax.custom_jvp, nondiff_argnums=(2, 3, 4, 5, 6))
def _forward_conv(x, w, stride, padding, dilation, groups, acc):
    return _native_conv(x, w, stride, padding, dilation, groups, acc)


@partial(_forward_conv.defjvp, symbolic_zeros=True)
def _forward_conv_jvp(stride, padding, dilation, groups, acc, primals, tangents):
    # The primal and the input tangent stay XLA convolutions (their transposes are fast
    # convolutions); only the weight tangent takes the dot form, for its transpose.
    x, w = primals
    dx, dw = tangents
    args = (stride, padding, dilation, groups, acc)
    out = _forward_conv(x, w, *args)
    tangent = None
    if not isinstance(dx, SymbolicZero):
        tangent = _native_conv(dx, w, *args)
    if not isinstance(dw, SymbolicZero):
        term = _conv_as_dots(x, dw, *args)
        tangent = term if tangent is None else tangent + term
    if tangent is None:
        tangent = jnp.zeros_like(out)
    return out, tangent


@register(*aten("convolution"))
def convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups):
    return conv(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups)


@register(*aten("_convolution"))
def _convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups, *_flags):
    return conv(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups)


@register(*aten("convolution_backward"))
def convolution_backward(
    grad_output,
    input,
    weight,
    bias_sizes,
    stride,
    padding,
    dilation,
    transposed,
    output_padding,
    groups,
    output_mask,
):
    # The transpose of the forward conv, which JAX derives exactly.
    def forward(x, w):
        return conv(x, w, None, stride, padding, dilation, transposed, output_padding, groups)

    _, vjp = jax.vjp(forward, input, weight)
    grad_input, grad_weight = vjp(grad_output.astype(input.dtype))
    channel = 1 if grad_output.ndim == weight.ndim else 0
    grad_bias = jnp.sum(grad_output, axis=tuple(d for d in range(grad_output.ndim) if d != channel))
    return (
        grad_input if output_mask[0] else None,
        grad_weight if output_mask[1] else None,
        grad_bias if output_mask[2] else None,
    )


def _im2col_indices(output_size, kernel_size, dilation, padding, stride):
    """For each (kernel offset, block) the padded-image coordinates it reads."""
    blocks = [
        (o + 2 * p - (d * (k - 1) + 1)) // s + 1
        for o, k, d, p, s in zip(output_size, kernel_size, dilation, padding, stride)
    ]
    rows = [
        jnp.arange(k)[:, None] * d + jnp.arange(b)[None, :] * s
        for k, d, b, s in zip(kernel_size, dilation, blocks, stride)
    ]
    return rows, blocks


@register(*aten("col2im"))
def col2im(self, output_size, kernel_size, dilation, padding, stride):
    unbatched = self.ndim == 2
    if unbatched:
        self = self[None]
    n, ckk, _ = self.shape
    kh, kw = kernel_size
    c = ckk // (kh * kw)
    (ri, rj), (bh, bw) = _im2col_indices(output_size, kernel_size, dilation, padding, stride)
    cols = self.reshape(n, c, kh, kw, bh, bw)
    ph, pw = output_size[0] + 2 * padding[0], output_size[1] + 2 * padding[1]
    out = jnp.zeros((n, c, ph, pw), self.dtype)
    idx_h = ri[:, None, :, None]  # (kh, 1, bh, 1)
    idx_w = rj[None, :, None, :]  # (1, kw, 1, bw)
    out = out.at[:, :, idx_h, idx_w].add(cols)
    out = out[:, :, padding[0] : padding[0] + output_size[0], padding[1] : padding[1] + output_size[1]]
    return out[0] if unbatched else out


@register(*aten("im2col"))
def im2col(self, kernel_size, dilation, padding, stride):
    unbatched = self.ndim == 3
    if unbatched:
        self = self[None]
    n, c, h, w = self.shape
    (ri, rj), (bh, bw) = _im2col_indices((h, w), kernel_size, dilation, padding, stride)
    padded = jnp.pad(self, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    patches = padded[:, :, ri[:, None, :, None], rj[None, :, None, :]]  # (n, c, kh, kw, bh, bw)
    out = patches.reshape(n, c * kernel_size[0] * kernel_size[1], bh * bw)
    return out[0] if unbatched else out
