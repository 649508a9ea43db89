"""W1's convolutions unbatched, pass by pass: torch eager (oneDNN) against each way XLA:CPU can run them.

``python -m bench.conv_lowering [--rounds 11] [--batch 64] [--core N] [--flags] [--skip-models]``

One process, one thread (``bench.machine.pin_threads``), every contender of a table timed
once per round in a shuffled order, the median over the rounds after two warm-up calls.
For each of W1's two convolutions (1→32 and 32→64 channels, 3x3, stride 1, no padding,
NCHW, float32) and each pass (forward, input gradient, weight gradient) it prints the
median, the ratio to torch and the error against a float64 reference; then the
convolution rule's pullback compiled apart from its forward (as torch autograd runs
``torchjax.jit(model)``), a training step of W1's CNN and W1 itself through the product.
``--flags`` reruns the forward table under each XLA flag of this jaxlib that names a
convolution library (one process each: XLA reads its flags once).

``--core`` pins to that core instead of the first one (``bench.run`` pins to the first:
two benchmarks on one core measure each other).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from functools import partial

from bench import machine


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.conv_lowering", description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=11, help="timed rounds (median over them; at least 9)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--core", type=int, help="pin to this core (default: the first, as bench.run does)")
    p.add_argument("--flags", action="store_true", help="also rerun the forward table under each XLA flag")
    p.add_argument("--forward-only", action="store_true", help=argparse.SUPPRESS)  # one --flags run
    p.add_argument("--skip-models", action="store_true", help="only the per-pass tables")
    return p.parse_args(argv)


ARGS = _parse(sys.argv[1:] if __name__ == "__main__" else [])
if ARGS.core is not None and hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, [ARGS.core])  # pin_threads then keeps this core
os.environ.setdefault("OMP_NUM_THREADS", "1")
machine.pin_threads(1)  # before jax is imported: XLA sizes its pool at import

import jax  # noqa: E402
import jax.extend.core as jax_core  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from jax import lax  # noqa: E402
from jax.custom_derivatives import SymbolicZero  # noqa: E402

from bench.harness import block  # noqa: E402
from torchjax._src.ops import conv as conv_rules  # noqa: E402
from torchjax._src.ops import platform_cpu  # noqa: E402
from torchjax._src.ops._common import conv_general  # noqa: E402

HIGHEST = lax.Precision.HIGHEST
ONE, NO_PAD = (1, 1), (0, 0)
# XLA flags of this jaxlib (``strings libjax_common.so | grep xla_cpu_``) that route
# convolutions or dots to oneDNN, XNNPACK or YNNPACK
FLAGS = [
    "--xla_cpu_use_onednn=true",
    "--xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_custom_call=true",
    "--xla_cpu_experimental_onednn_fusion_type=dot,eltwise",
    "--xla_cpu_use_xnnpack=true",
    "--xla_cpu_experimental_xnn_fusion_type=dot,eltwise",
    "--xla_cpu_experimental_ynn_fusion_type=dot,eltwise,reduce",
    "--xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY",
]


# --------------------------------------------------------------------------- layouts


def nhwc(a):
    return jnp.transpose(a, (0, 2, 3, 1))


def nchw(a):
    return jnp.transpose(a, (0, 3, 1, 2))


def hwio(w):
    return jnp.transpose(w, (2, 3, 1, 0))


def valid(size, k):
    return size - k + 1


# --------------------------------------------------------------------------- forward forms
# x: (N, C, H, W), w: (O, C, kh, kw); stride 1, no padding: W1's convolutions


def fwd_plain(x, w):
    return conv_general(x, w, ONE, [NO_PAD, NO_PAD], ONE, 1, None)


def fwd_nchw_pad_trick(x, w):
    return platform_cpu._padded_conv(x, w, ONE, NO_PAD, ONE, 1, None)


def fwd_nhwc(x, w):
    dims = ("NHWC", "HWIO", "NHWC")
    return nchw(lax.conv_general_dilated(nhwc(x), hwio(w), ONE, "VALID", dimension_numbers=dims, precision=HIGHEST))


def fwd_nhwc_pad_trick(x, w):
    return platform_cpu._channels_last_conv(x, w, ONE, NO_PAD, ONE, 1, None)


def fwd_nhwc_operands(xh, kh):
    """The convolution alone, on operands already NHWC/HWIO and with an NHWC result."""
    dims = ("NHWC", "HWIO", "NHWC")
    out = lax.conv_general_dilated(xh, kh, ONE, [(0, 1), NO_PAD], dimension_numbers=dims, precision=HIGHEST)
    return out[:, : xh.shape[1] - kh.shape[0] + 1]


def fwd_im2col_nhwc(x, w):
    """Patches (N·Ho·Wo, kh·kw·C) from nine shifted slices, then one (M=N·Ho·Wo) GEMM."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    ho, wo = valid(h, kh), valid(wd, kw)
    xh = nhwc(x)
    patches = jnp.concatenate([xh[:, i : i + ho, j : j + wo] for i in range(kh) for j in range(kw)], axis=3)
    out = jnp.dot(patches.reshape(n * ho * wo, kh * kw * c), hwio(w).reshape(kh * kw * c, o), precision=HIGHEST)
    return nchw(out.reshape(n, ho, wo, o))


def _flat_rows(x, kh, kw):
    """x as (C, N·H·W) and its (kh·kw·C, N·H·W) patches: each offset one contiguous slice
    of the flattened rows (positions past the valid ones read the next row or image, and
    are cropped afterwards)."""
    n, c, h, wd = x.shape
    flat = jnp.swapaxes(x, 0, 1).reshape(c, n * h * wd)
    flat = jnp.pad(flat, ((0, 0), (0, (kh - 1) * wd + kw - 1)))
    size = n * h * wd
    return jnp.concatenate([flat[:, i * wd + j : i * wd + j + size] for i in range(kh) for j in range(kw)])


def fwd_im2col_flat(x, w):
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    patches = _flat_rows(x, kh, kw)
    kernel = jnp.transpose(w, (0, 2, 3, 1)).reshape(o, kh * kw * c)
    out = jnp.dot(kernel, patches, precision=HIGHEST).reshape(o, n, h, wd)[:, :, : valid(h, kh), : valid(wd, kw)]
    return jnp.swapaxes(out, 0, 1)


def fwd_patches(x, w):
    patches = lax.conv_general_dilated_patches(x, w.shape[2:], ONE, "VALID", precision=HIGHEST)
    return jnp.einsum("ok,nkhw->nohw", w.reshape(w.shape[0], -1), patches, precision=HIGHEST)


WINOGRAD = {  # (Bᵀ, G, Aᵀ) of Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks"
    "F(2,3)": (
        [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
        [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
        [[1, 1, 1, 0], [0, 1, -1, -1]],
    ),
    "F(4,3)": (
        [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
         [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
        [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
         [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
        [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
    ),
}  # fmt: skip


def _combine(matrix, terms):
    """``matrix @ terms`` for a small constant matrix, as adds (XLA fuses them into one loop)."""
    rows = []
    for row in matrix:
        acc = None
        for coef, term in zip(row, terms):
            if coef:
                term = term if coef == 1 else -term if coef == -1 else coef * term
                acc = term if acc is None else acc + term
        rows.append(acc)
    return rows


def winograd(x, w, variant):
    """A 3x3 stride-1 convolution as Winograd F(m,3): per tile, a·a elementwise products,
    done as a·a GEMMs over channels (C → O) across all tiles."""
    bt, g, at = WINOGRAD[variant]
    a, m = len(bt), len(at)
    n, c, h, wd = x.shape
    o = w.shape[0]
    ho, wo = valid(h, 3), valid(wd, 3)
    th, tw = -(-ho // m), -(-wo // m)
    x = jnp.swapaxes(jnp.pad(x, ((0, 0), (0, 0), (0, th * m + 2 - h), (0, tw * m + 2 - wd))), 0, 1)
    d = [[x[:, :, i : i + m * (th - 1) + 1 : m, j : j + m * (tw - 1) + 1 : m] for j in range(a)] for i in range(a)]
    t = [_combine(bt, [d[k][l] for k in range(a)]) for l in range(a)]  # t[l][i] = (Bᵀ d)[i][l]
    v = [_combine(bt, [t[l][i] for l in range(a)]) for i in range(a)]  # v[i][j] = (Bᵀ d B)[i][j]
    v = jnp.stack([v[i][j] for i in range(a) for j in range(a)])  # (a², C, N, th, tw)
    gm = jnp.asarray(g, w.dtype)
    u = jnp.einsum("ik,ockl,jl->ijoc", gm, w, gm, precision=HIGHEST).reshape(a * a, o, c)
    prod = lax.dot_general(u, v, (((2,), (1,)), ((0,), (0,))), precision=HIGHEST)  # (a², O, N, th, tw)
    prod = [[prod[i * a + j] for j in range(a)] for i in range(a)]
    r = [_combine(at, [prod[k][l] for k in range(a)]) for l in range(a)]
    y = [_combine(at, [r[l][p] for l in range(a)]) for p in range(m)]  # y[p][q]: (O, N, th, tw)
    y = jnp.stack([jnp.stack(y[p], -1) for p in range(m)], -2)  # (O, N, th, tw, p, q)
    y = jnp.transpose(y, (1, 0, 2, 4, 3, 5)).reshape(n, o, th * m, tw * m)
    return y[:, :, :ho, :wo]


# --------------------------------------------------------------------------- input-gradient forms
# (g, x, w) -> the gradient with respect to x of the forward, g: (N, O, Ho, Wo)


def transpose_wrt_x(forward):
    return lambda g, x, w: jax.vjp(lambda x: forward(x, w), x)[1](g)[0]


def transpose_wrt_w(forward):
    return lambda g, x, w: jax.vjp(lambda w: forward(x, w), w)[1](g)[0]


def ig_nhwc_tangent(x, w):  # what the CPU lowering transposes
    return platform_cpu._channels_last_conv(x, w, ONE, NO_PAD, ONE, 1, None, kernel_spec="OI")


def ig_full_conv(g, x, w):
    """The full convolution of the padded gradient with the flipped kernel, NHWC, padded
    one row further (the pad trick) and cropped."""
    kernel = jnp.transpose(jnp.flip(w, (2, 3)), (2, 3, 0, 1))  # (kh, kw, O, C): HWIO from O to C
    out = lax.conv_general_dilated(
        nhwc(g), kernel, ONE, [(2, 3), (2, 2)], dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=HIGHEST
    )
    return nchw(out[:, : x.shape[2]])


def ig_col2im(g, x, w):
    """cols = grad · wᵀ (one GEMM, M = N·Ho·Wo), then col2im: the sum of nine shifted pads."""
    n, o, ho, wo = g.shape
    _, c, kh, kw = w.shape
    cols = jnp.dot(nhwc(g).reshape(n * ho * wo, o), hwio(w).reshape(kh * kw * c, o).T, precision=HIGHEST)
    cols = cols.reshape(n, ho, wo, kh, kw, c)
    out = sum(
        jnp.pad(cols[:, :, :, i, j], ((0, 0), (i, kh - 1 - i), (j, kw - 1 - j), (0, 0)))
        for i in range(kh)
        for j in range(kw)
    )
    return nchw(out)


def ig_winograd(g, x, w):
    kernel = jnp.flip(jnp.swapaxes(w, 0, 1), (2, 3))
    return winograd(jnp.pad(g, ((0, 0), (0, 0), (2, 2), (2, 2))), kernel, "F(2,3)")


# --------------------------------------------------------------------------- weight-gradient forms


def wg_dots(g, x, w):
    """One dot per kernel offset, unrolled, contracting batch and positions."""
    n, o, ho, wo = g.shape
    _, c, kh, kw = w.shape
    flat = g.reshape(n, o, -1)
    dims = (((0, 2), (0, 2)), ((), ()))
    taps = [
        lax.dot_general(flat, x[:, :, i : i + ho, j : j + wo].reshape(n, c, -1), dims, precision=HIGHEST)
        for i in range(kh)
        for j in range(kw)
    ]
    return jnp.stack(taps, -1).reshape(o, c, kh, kw)


def wg_im2col_nhwc(g, x, w):
    """gradᵀ (O, N·Ho·Wo) · patches (N·Ho·Wo, kh·kw·C): one GEMM."""
    n, o, ho, wo = g.shape
    _, c, kh, kw = w.shape
    xh = nhwc(x)
    patches = jnp.concatenate([xh[:, i : i + ho, j : j + wo] for i in range(kh) for j in range(kw)], axis=3)
    out = lax.dot_general(
        nhwc(g).reshape(-1, o), patches.reshape(-1, kh * kw * c), (((0,), (0,)), ((), ())), precision=HIGHEST
    )
    return jnp.transpose(out.reshape(o, kh, kw, c), (0, 3, 1, 2))


def wg_im2col_flat(g, x, w):
    """patches (kh·kw·C, N·H·W) as contiguous slices of the flattened rows · gradᵀ (zero
    past the valid positions): one GEMM in XLA's fastest orientation for it."""
    n, o, ho, wo = g.shape
    _, c, kh, kw = w.shape
    h, wd = x.shape[2:]
    grad = jnp.pad(jnp.swapaxes(g, 0, 1), ((0, 0), (0, 0), (0, h - ho), (0, wd - wo))).reshape(o, -1)
    out = lax.dot_general(_flat_rows(x, kh, kw), grad, (((1,), (1,)), ((), ())), precision=HIGHEST)
    return jnp.transpose(out.reshape(kh, kw, c, o), (3, 2, 0, 1))


def wg_scan(g, x, w):  # the CPU lowering's weight gradient
    return transpose_wrt_w(lambda x, w: platform_cpu._conv_as_dots(x, w, ONE, NO_PAD, ONE, 1, None))(g, x, w)


# --------------------------------------------------------------------------- torch


def torch_forward(x, w):
    return torch.ops.aten.convolution(x, w, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1)


def torch_backward(mask, g, x, w):
    return torch.ops.aten.convolution_backward(g, x, w, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1, mask)


# --------------------------------------------------------------------------- timing


def interleaved(contenders: dict, rounds: int) -> dict[str, float]:
    """Median milliseconds of each zero-argument callable: two warm-up calls each, then
    ``rounds`` rounds of every contender once, in a shuffled order."""
    for fn in contenders.values():
        block(fn())
        block(fn())
    times: dict[str, list[float]] = {k: [] for k in contenders}
    rng = random.Random(0)
    for _ in range(rounds):
        order = list(contenders)
        rng.shuffle(order)
        for k in order:
            start = time.perf_counter()
            block(contenders[k]())
            times[k].append((time.perf_counter() - start) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def table(title: str, medians: dict[str, float], reference: str, errors: dict[str, float] | None = None) -> None:
    print(f"\n{title}")
    print(f"  {'form':66s} {'median ms':>10s} {'vs torch':>9s} {'rel. error':>11s}")
    for k, ms in medians.items():
        err = "" if errors is None or k not in errors else f"{errors[k]:.1e}"
        print(f"  {k:66s} {ms:10.2f} {ms / medians[reference]:8.2f}x {err:>11s}")


def relative_error(actual, expected) -> float:
    expected = np.asarray(expected, np.float64)
    return float(np.abs(np.asarray(actual, np.float64) - expected).max() / np.abs(expected).max())


# --------------------------------------------------------------------------- per-pass tables

LAYERS = {"conv1 1→32, 28x28": (1, 32, 28), "conv2 32→64, 26x26": (32, 64, 26)}
TORCH = "torch eager (oneDNN)"


def layer_data(batch: int, c: int, o: int, size: int) -> tuple[tuple, tuple]:
    """One 3x3 layer's input, kernel and output gradient, as torch tensors and as JAX arrays."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, c, size, size)).astype(np.float32)
    w = (rng.standard_normal((o, c, 3, 3)) / np.sqrt(9 * c)).astype(np.float32)
    g = rng.standard_normal((batch, o, size - 2, size - 2)).astype(np.float32)
    return tuple(torch.from_numpy(a) for a in (x, w, g)), tuple(jnp.asarray(a) for a in (x, w, g))


def pass_tables(batch: int, rounds: int, forward_only: bool) -> None:
    for layer, (c, o, size) in LAYERS.items():
        (tx, tw, tg), (jx, jw, jg) = layer_data(batch, c, o, size)
        exact = [a.double() for a in (tg, tx, tw)]
        want_x, want_w, _ = torch_backward([True, True, False], *exact)
        want_out = torch_forward(exact[1], exact[2])

        forward = {
            "XLA conv, NCHW (the plain rule)": fwd_plain,
            "XLA conv, NCHW, one row of padding added (previous CPU lowering)": fwd_nchw_pad_trick,
            "XLA conv, NHWC": fwd_nhwc,
            "XLA conv, NHWC, one row of padding added (CPU lowering)": fwd_nhwc_pad_trick,
            "im2col NHWC (shifted slices) + one GEMM": fwd_im2col_nhwc,
            "im2col of flattened rows (contiguous slices) + one GEMM": fwd_im2col_flat,
            "conv_general_dilated_patches + einsum": fwd_patches,
            "Winograd F(2,3)": partial(winograd, variant="F(2,3)"),
            "Winograd F(4,3)": partial(winograd, variant="F(4,3)"),
        }
        compiled = {k: jax.jit(f) for k, f in forward.items()}
        contenders = {TORCH: lambda: torch_forward(tx, tw)}
        contenders |= {k: partial(f, jx, jw) for k, f in compiled.items()}
        xh, kh = jnp.asarray(nhwc(jx)), jnp.asarray(hwio(jw))
        contenders["XLA conv alone: operands and result NHWC (a bound)"] = partial(jax.jit(fwd_nhwc_operands), xh, kh)
        errors = {k: relative_error(f(jx, jw), want_out) for k, f in compiled.items()}
        table(f"{layer}, batch {batch}: forward", interleaved(contenders, rounds), TORCH, errors)
        if forward_only:
            continue

        input_grad = {
            "XLA's transpose of the plain rule": transpose_wrt_x(fwd_plain),
            "XLA's transpose, NCHW pad trick (previous CPU lowering)": transpose_wrt_x(fwd_nchw_pad_trick),
            "XLA's transpose of the NHWC tangent (CPU lowering)": transpose_wrt_x(ig_nhwc_tangent),
            "full conv of the padded grad, flipped kernel, NHWC": ig_full_conv,
            "GEMM (M = N·Ho·Wo) + col2im": ig_col2im,
            "Winograd F(2,3) of the padded grad": ig_winograd,
        }
        weight_grad = {
            "XLA's transpose of the plain rule": transpose_wrt_w(fwd_plain),
            "XLA's transpose, NCHW pad trick": transpose_wrt_w(fwd_nchw_pad_trick),
            "scan of one dot per kernel offset (CPU lowering)": wg_scan,
            "one dot per kernel offset, unrolled": wg_dots,
            "im2col NHWC (shifted slices), gradᵀ · patches": wg_im2col_nhwc,
            "im2col of flattened rows, patches · gradᵀ": wg_im2col_flat,
        }
        for name, forms, mask, want in [
            ("input gradient", input_grad, [True, False, False], want_x),
            ("weight gradient", weight_grad, [False, True, False], want_w),
        ]:
            compiled = {k: jax.jit(f) for k, f in forms.items()}
            contenders = {TORCH: partial(torch_backward, mask, tg, tx, tw)}
            contenders |= {k: partial(f, jg, jx, jw) for k, f in compiled.items()}
            errors = {k: relative_error(f(jg, jx, jw), want) for k, f in compiled.items()}
            table(f"{layer}, batch {batch}: {name}", interleaved(contenders, rounds), TORCH, errors)


def flag_tables(batch: int, rounds: int) -> None:
    """The forward table under each XLA flag: a process each, XLA reads its flags once."""
    for flags in FLAGS:
        env = dict(os.environ, XLA_FLAGS=flags)
        cmd = [sys.executable, "-m", "bench.conv_lowering", "--forward-only", "--skip-models"]
        cmd += ["--batch", str(batch), "--rounds", str(rounds)]
        if ARGS.core is not None:
            cmd += ["--core", str(ARGS.core)]
        print(f"\n===== XLA_FLAGS={flags}", flush=True)
        run = subprocess.run(cmd, env=env, capture_output=True, text=True)
        print(run.stdout if run.returncode == 0 else f"failed:\n{run.stderr[-2000:]}", flush=True)


# --------------------------------------------------------------------------- the product


@partial(jax.custom_jvp, nondiff_argnums=(2,))
def _previous_lowering(x, w, args):
    """The CPU lowering before channels-last: the pad trick in torch's layouts, the scan of dots."""
    return platform_cpu._padded_conv(x, w, *args)


@partial(_previous_lowering.defjvp, symbolic_zeros=True)
def _previous_jvp(args, primals, tangents):
    (x, w), (dx, dw) = primals, tangents
    out = _previous_lowering(x, w, args)
    tangent = jnp.zeros_like(out)
    if not isinstance(dx, SymbolicZero):
        tangent = tangent + platform_cpu._padded_conv(dx, w, *args)
    if not isinstance(dw, SymbolicZero):
        tangent = tangent + platform_cpu._conv_as_dots(x, dw, *args)
    return out, tangent


def _previous_rule(x, w):
    args = (ONE, NO_PAD, ONE, 1, None)
    return lax.platform_dependent(x, w, cpu=lambda x, w: _previous_lowering(x, w, args), default=fwd_plain)


def _rule(x, w):
    return conv_rules.conv(x, w, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1)


def _split_pullback(rule, x, w, g):
    """The rule's pullback compiled apart from its forward, as ``torch_autograd`` does for
    ``jit(model)`` outputs: the traced jaxpr is replayed under ``jax.vjp`` and the pullback
    compiled on its own, with the residuals as inputs."""
    body = jax_core.jaxpr_as_fun(jax.make_jaxpr(rule)(x, w))
    _, pullback = jax.vjp(lambda x, w: body(x, w)[0], x, w)
    leaves, tree = jax.tree_util.tree_flatten(pullback)
    run = jax.jit(lambda leaves, g: jax.tree_util.tree_unflatten(tree, leaves)(g))
    return partial(run, leaves, g)


def rule_tables(batch: int, rounds: int) -> None:
    c, o, size = LAYERS["conv2 32→64, 26x26"]
    (tx, tw, tg), (jx, jw, jg) = layer_data(batch, c, o, size)
    one_program = lambda rule: partial(jax.jit(lambda x, w, g: jax.vjp(rule, x, w)[1](g)), jx, jw, jg)
    contenders = {
        TORCH + ": input and weight gradients": partial(torch_backward, [True, True, False], tg, tx, tw),
        "rule's pullback, compiled apart: previous CPU lowering": _split_pullback(_previous_rule, jx, jw, jg),
        "rule's pullback, compiled apart: CPU lowering": _split_pullback(_rule, jx, jw, jg),
        "forward + pullback, one program: previous CPU lowering": one_program(_previous_rule),
        "forward + pullback, one program: CPU lowering": one_program(_rule),
    }
    medians = interleaved(contenders, rounds)
    table(f"conv2, batch {batch}: the convolution rule's gradients", medians, TORCH + ": input and weight gradients")


def model_tables(batch: int, rounds: int) -> None:
    """A training step of W1's CNN (forward, loss, backward; no optimizer) and W1."""
    import torchjax
    from bench.workloads.w1_per_sample_grads import SimpleCNN

    torch.manual_seed(0)
    model = SimpleCNN()
    data, targets = torch.randn(batch, 1, 28, 28), torch.randint(10, (batch,))
    params = {k: v.detach() for k, v in model.named_parameters()}
    fast = torchjax.jit(model)

    def step(forward):
        model.zero_grad(set_to_none=True)
        F.nll_loss(forward(data), targets).backward()
        return [p.grad for p in model.parameters()]

    def loss(params, x, y):
        return F.nll_loss(torch.func.functional_call(model, params, (x,)), y)

    def sample_loss(params, sample, target):
        return loss(params, sample.unsqueeze(0), target.unsqueeze(0))

    grad = torchjax.func.grad(loss)
    per_sample = torchjax.func.vmap(torchjax.func.grad(sample_loss), in_dims=(None, 0, 0))
    per_sample_torch = torch.func.vmap(torch.func.grad(sample_loss), in_dims=(None, 0, 0))
    contenders = {
        "training step: torch eager": partial(step, model),
        "training step: torchjax.jit(model) + loss.backward()": partial(step, fast),
        "training step: torchjax.func.grad(functional_call)": partial(grad, params, data, targets),
    }
    want = step(model)
    got = [step(fast), list(grad(params, data, targets).values())]
    errs = [max(relative_error(a.numpy(), b.numpy()) for a, b in zip(g, want)) for g in got]
    print(f"\ntraining step gradients against eager: max rel. error jit {errs[0]:.1e}, func.grad {errs[1]:.1e}")
    table(f"W1's CNN, batch {batch}", interleaved(contenders, rounds), "training step: torch eager")
    contenders = {
        "W1 per-sample grads: torch.func": partial(per_sample_torch, params, data, targets),
        "W1 per-sample grads: torchjax": partial(per_sample, params, data, targets),
    }
    table(f"W1, batch {batch}", interleaved(contenders, rounds), "W1 per-sample grads: torch.func")


def main() -> int:
    if ARGS.rounds < 9 and not ARGS.forward_only:
        raise SystemExit("--rounds: at least 9 (the median of fewer is noise on this machine)")
    if not ARGS.forward_only:
        for k, v in machine.describe().items():
            print(f"{k}: {v}")
    pass_tables(ARGS.batch, ARGS.rounds, ARGS.forward_only)
    if ARGS.flags:
        flag_tables(ARGS.batch, ARGS.rounds)
    if not ARGS.skip_models:
        rule_tables(ARGS.batch, ARGS.rounds)
        model_tables(ARGS.batch, ARGS.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
