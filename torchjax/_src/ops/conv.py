"""Convolutions (1d/2d/3d, grouped, dilated, transposed) and their backward, plus col2im.

The plain rule is XLA's convolution; programs lowered for CPU get the lowering of
``platform_cpu.conv`` instead (2-D convolutions written in XLA:CPU's own layouts, fast
per-sample weight gradients).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from ..registry import aten, register
from . import platform_cpu
from ._common import conv_dimension_numbers, conv_general

_HIGHEST = lax.Precision.HIGHEST


def _tuple(v, n):
    v = tuple(v) if isinstance(v, (list, tuple)) else (v,)
    return v * n if len(v) == 1 else v


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
            dimension_numbers=conv_dimension_numbers(n),
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


def _forward_conv(x, w, stride, padding, dilation, groups, acc):
    """XLA's convolution with JAX's derivatives; for CPU, the lowering tuned for it."""

    def plain(x, w):
        return conv_general(x, w, stride, [(p, p) for p in padding], dilation, groups, acc)

    def tuned(x, w):
        return platform_cpu.conv(x, w, stride, padding, dilation, groups, acc)

    return lax.platform_dependent(x, w, cpu=tuned, default=plain)


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
