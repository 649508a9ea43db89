"""Lowerings tuned for XLA:CPU: each computes what a plain rule computes, in a form XLA:CPU runs faster.

A rule chooses with ``lax.platform_dependent(..., cpu=<tuned>, default=<plain>)``. JAX
resolves that choice when it lowers the program, for the platform it lowers it for: a
program exported for GPU or TPU from a CPU machine carries the plain form, the same
program compiled for CPU the tuned one. Nothing here registers a rule, and nothing looks
at the default backend or at tracer classes. ``tests/test_platform_lowerings.py`` checks
each lowering against its plain rule, and which one each platform gets; bench/ measures
what they buy (W1: the convolution's weight gradient, W2: the matmul;
``bench/conv_lowering.py``: each pass of an unbatched convolution).
"""

from __future__ import annotations

import itertools
from functools import partial

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

from ._common import conv_general

_HIGHEST = lax.Precision.HIGHEST


# --------------------------------------------------------------------------- convolution


def _padded_conv(x, w, stride, padding, dilation, groups, acc):
    """The convolution with symmetric ``padding``.

    XLA:CPU runs an unpadded convolution several times slower than a padded one: pad one
    extra row at the end and drop the output row it adds.
    """
    pads = [(p, p) for p in padding]
    if any(padding):
        return conv_general(x, w, stride, pads, dilation, groups, acc)
    pads[0] = (0, 1)
    out = conv_general(x, w, stride, pads, dilation, groups, acc)
    rows = (x.shape[2] - dilation[0] * (w.shape[2] - 1) - 1) // stride[0] + 1
    return lax.slice_in_dim(out, 0, rows, axis=2)


def _channels_last_conv(x, w, stride, padding, dilation, groups, acc, *, kernel_spec="IO"):
    """``_padded_conv`` of a 2-D ``x`` written in the layouts XLA:CPU's convolution runs in.

    XLA:CPU runs a convolution only as NHWC input, HWIO kernel, NHWC output; a pass
    (ConvCanonicalization) rewrites any other convolution into that form with transposes
    around it, and one it misses runs in a generic loop tens of times slower. It misses
    those it meets only after it has run: in the pullback compiled apart from its forward
    (``jit(model)`` under torch autograd) the platform's branch is a ``case`` on an index
    the forward passes in, which XLA inlines only after that pass. Written in these
    layouts here, every convolution is already in that form, in the forward and in what
    JAX derives from it.

    ``kernel_spec="OI"`` lays the kernel out as (H, W, out, in) and reads it that way: a
    convolution XLA needs transposes to run, whose transpose (``jax.vjp`` with respect to
    ``x``, the input gradient) is one it runs as it stands.
    """
    pads = [(p, p) for p in padding]
    trim = not any(padding)
    if trim:
        pads[0] = (0, 1)
    order = (2, 3, 1, 0) if kernel_spec == "IO" else (2, 3, 0, 1)
    out = lax.conv_general_dilated(
        jnp.transpose(x, (0, 2, 3, 1)),
        jnp.transpose(w, order),
        window_strides=stride,
        padding=pads,
        rhs_dilation=dilation,
        dimension_numbers=("NHWC", "HW" + kernel_spec, "NHWC"),
        feature_group_count=groups,
        precision=_HIGHEST,
        preferred_element_type=acc,
    )
    out = jnp.transpose(out, (0, 3, 1, 2))
    if trim:  # after the transpose: in the input gradient, the row this drops is then padded
        # back in the transposing copy, and not folded into the convolution's own padding
        rows = (x.shape[2] - dilation[0] * (w.shape[2] - 1) - 1) // stride[0] + 1
        out = lax.slice_in_dim(out, 0, rows, axis=2)
    return out


def _conv_as_dots(x, w, stride, padding, dilation, groups, acc):
    """The same convolution as a sum over kernel offsets of (strided slice of x) · w[..., offset].

    Linear in ``w``, so its transpose (the weight gradient) is one dot per offset
    contracting over batch and output positions. Under ``vmap`` those become batched
    matmuls; XLA's own transpose of a convolution becomes a convolution with one group
    per sample there, which is several times slower on CPU (per-sample gradients).
    Unbatched, the dots are also faster than XLA's transposed convolution, and than one
    matmul against all offsets at once (im2col), whose copy of the input per offset costs
    more than the matmul saves (``bench/conv_lowering.py``).

    The offsets are a ``lax.scan``, so the transpose is a loop too: each step slices one
    window and feeds it to its dot while it is still in cache. Unrolled, XLA:CPU first
    copies out all the windows and then runs the dots, which is slower.
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
    # one: saved, all of them would be stacked (one input-sized copy per offset) and read back.
    tap = jax.checkpoint(tap, policy=jax.checkpoint_policies.nothing_saveable)
    first = jax.eval_shape(lambda: tap(0, (offsets[0], taps[0]))[0])
    out, _ = lax.scan(tap, jnp.zeros(first.shape, first.dtype), (offsets, taps))
    out = out.reshape(cout, batch, *out_size)
    return jnp.swapaxes(out, 0, 1)


def _input_linear(x, w, stride, padding, dilation, groups, acc, *, tangent=False):
    """The convolution as a function of ``x``: in XLA:CPU's own layouts for 2-D, else ``_padded_conv``.

    ``tangent``: the form whose transpose is the input gradient (see ``_channels_last_conv``).
    """
    if x.ndim == 4:
        return _channels_last_conv(x, w, stride, padding, dilation, groups, acc, kernel_spec="OI" if tangent else "IO")
    return _padded_conv(x, w, stride, padding, dilation, groups, acc)


@partial(jax.custom_jvp, nondiff_argnums=(2, 3, 4, 5, 6))
def conv(x, w, stride, padding, dilation, groups, acc):
    """A (non-transposed, batched) convolution whose weight gradient is a scan of dots.

    ``stride``, ``padding`` and ``dilation`` are tuples of one entry per spatial dim;
    ``padding`` is symmetric. The plain rule is ``conv_general`` with JAX's own derivatives.
    """
    return _input_linear(x, w, stride, padding, dilation, groups, acc)


@partial(conv.defjvp, symbolic_zeros=True)
def _conv_jvp(stride, padding, dilation, groups, acc, primals, tangents):
    # The primal and the input tangent stay XLA convolutions (their transposes are fast
    # convolutions); only the weight tangent takes the dot form, for its transpose.
    x, w = primals
    dx, dw = tangents
    args = (stride, padding, dilation, groups, acc)
    out = conv(x, w, *args)
    tangent = None
    if not isinstance(dx, SymbolicZero):
        tangent = _input_linear(dx, w, *args, tangent=True)
    if not isinstance(dw, SymbolicZero):
        term = _conv_as_dots(x, dw, *args)
        tangent = term if tangent is None else tangent + term
    if tangent is None:
        tangent = jnp.zeros_like(out)
    return out, tangent


# --------------------------------------------------------------------------- matmul


def weight_major_matmul(a, b, acc):
    """``a @ b[i]`` for every ``i``: one 2-D ``a`` against a stack ``b`` of 2-D matrices.

    Formed as ``(b[i]ᵀ aᵀ)ᵀ``, so the stacked operand (an ensemble's weights under
    ``vmap``) stays the left one, in its own layout; as ``a @ b[i]``, XLA:CPU first
    copies every ``b[i]`` into a transposed layout.
    """

    def one(b):
        return lax.dot_general(b, a, (((0,), (1,)), ((), ())), precision=_HIGHEST, preferred_element_type=acc).T

    return jax.vmap(one)(b)
