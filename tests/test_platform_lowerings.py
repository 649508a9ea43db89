"""The CPU-tuned lowerings of ``torchjax/_src/ops/platform_cpu.py`` against the plain rules.

Each tuned lowering must compute what the plain rule computes (forward and gradient, in
float32 and float64), and a program must carry the tuned form when it is lowered for CPU
and the plain one when it is lowered for another platform, even from this CPU machine.
"""

from __future__ import annotations

import re
from functools import partial

import jax
import jax.extend.core as jax_core
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import torchjax
from torchjax._src.ops import conv as conv_rules
from torchjax._src.ops import linalg as linalg_rules
from torchjax._src.ops import platform_cpu
from torchjax._src.ops._common import conv_general

DTYPES = [np.float32, np.float64]
TOLERANCES = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}
HIGHEST = jax.lax.Precision.HIGHEST


def _random(shape, dtype, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _assert_close(actual, expected, dtype):
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected)):
        assert a.dtype == e.dtype
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), **TOLERANCES[dtype])


def _lowered(fn, *args, platform=None) -> str:
    """StableHLO of ``jit(fn)``, lowered for ``platform`` (this machine's when None)."""
    specs = [jax.ShapeDtypeStruct(np.shape(a), a.dtype) for a in args]
    if platform is None:
        return jax.jit(fn).lower(*specs).as_text()
    return jax.export.export(jax.jit(fn), platforms=(platform,))(*specs).mlir_module()


# --------------------------------------------------------------------------- convolution

# (input shape, weight shape, stride, padding, dilation, groups)
CONVS = {
    "2d": ((3, 3, 9, 8), (4, 3, 3, 3), (1, 1), (0, 0), (1, 1), 1),
    "2d-one-input-channel": ((2, 1, 7, 6), (3, 1, 3, 3), (1, 1), (0, 0), (1, 1), 1),  # W1's first
    "2d-strided-dilated": ((2, 3, 11, 9), (4, 3, 3, 2), (2, 1), (0, 0), (2, 1), 1),
    "2d-strided-padded-grouped": ((3, 4, 10, 9), (6, 2, 3, 2), (2, 1), (1, 2), (1, 2), 2),
    "1d-dilated": ((3, 2, 11), (4, 2, 3), (2,), (0,), (2,), 1),
    "3d": ((2, 2, 5, 6, 7), (2, 2, 2, 3, 2), (1, 1, 1), (1, 0, 1), (1, 1, 1), 1),
}


def _convs(case):
    _, _, stride, padding, dilation, groups = CONVS[case]

    def plain(x, w):
        return conv_general(x, w, stride, [(p, p) for p in padding], dilation, groups, None)

    def tuned(x, w):
        return platform_cpu.conv(x, w, stride, padding, dilation, groups, None)

    return plain, tuned


def _conv_inputs(case, dtype):
    x_shape, w_shape, *_ = CONVS[case]
    return _random(x_shape, dtype, 0), _random(w_shape, dtype, 1)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("case", list(CONVS))
def test_tuned_conv_matches_plain(case, dtype):
    plain, tuned = _convs(case)
    with jax.enable_x64(dtype == np.float64):
        x, w = _conv_inputs(case, dtype)
        cotangent = _random(jax.eval_shape(plain, x, w).shape, dtype, 2)

        def grads(conv):
            return jax.jit(jax.grad(lambda x, w: (conv(x, w) * cotangent).sum(), argnums=(0, 1)))(x, w)

        def per_sample(conv):  # the weight gradient of each sample: what platform_cpu.conv is tuned for
            loss = lambda w, x: (conv(x[None], w) * cotangent[:1]).sum()
            return jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0)))(w, x)

        def tangent(conv):  # forward mode, where the input tangent has a form of its own
            directions = _random(x.shape, dtype, 3), _random(w.shape, dtype, 4)
            return jax.jit(lambda x, w: jax.jvp(conv, (x, w), directions))(x, w)

        def batched(conv):  # vmap over a leading axis of the input only
            return jax.jit(jax.vmap(conv, in_axes=(0, None)))(np.stack([x, 2 * x]), w)

        _assert_close(jax.jit(tuned)(x, w), jax.jit(plain)(x, w), dtype)
        _assert_close(grads(tuned), grads(plain), dtype)
        _assert_close(per_sample(tuned), per_sample(plain), dtype)
        _assert_close(tangent(tuned), tangent(plain), dtype)
        _assert_close(batched(tuned), batched(plain), dtype)


CONVS_2D = [case for case in CONVS if len(CONVS[case][0]) == 4]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("case", CONVS_2D)
def test_convolution_backward_rule_matches_plain(case, dtype):
    """The rule torch's derivative formulas reach (``loss.backward()`` in a captured step)."""
    _, _, stride, padding, dilation, groups = CONVS[case]
    plain, _ = _convs(case)
    with jax.enable_x64(dtype == np.float64):
        x, w = _conv_inputs(case, dtype)
        cotangent = _random(jax.eval_shape(plain, x, w).shape, dtype, 2)

        def backward(g, x, w):
            args = (list(stride), list(padding), list(dilation), False, [0, 0], groups, [True, True, True])
            return conv_rules.convolution_backward(g, x, w, [w.shape[0]], *args)

        want = (*jax.vjp(plain, x, w)[1](cotangent), cotangent.sum(axis=(0, 2, 3)))
        _assert_close(jax.jit(backward)(cotangent, x, w), want, dtype)


def _pullback_compiled_apart(rule, x, w):
    """The pullback of ``rule`` compiled apart from its forward, as ``torch_autograd`` runs
    the outputs of ``jit(model)``: the traced jaxpr replayed under ``jax.vjp``, its pullback
    compiled on its own, the residuals (the platform's branch index among them) as inputs."""
    body = jax_core.jaxpr_as_fun(jax.make_jaxpr(rule)(x, w))
    out, pullback = jax.vjp(lambda x, w: body(x, w)[0], x, w)
    leaves, tree = jax.tree_util.tree_flatten(pullback)
    run = jax.jit(lambda leaves, g: jax.tree_util.tree_unflatten(tree, leaves)(g))
    return partial(run, leaves), partial(run.lower, leaves), out


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="compiles for this machine: XLA:CPU's layouts")
@pytest.mark.parametrize("case", CONVS_2D)
def test_conv_pullback_compiled_apart_keeps_xla_cpu_layouts(case):
    """XLA:CPU runs a convolution only in its own layouts (NHWC, HWIO); it rewrites others
    into them in a pass, which misses the convolutions of a branch it inlines later, as in
    this pullback, leaving them to a generic loop tens of times slower."""
    _, _, stride, padding, dilation, groups = CONVS[case]
    plain, _ = _convs(case)

    def rule(x, w):
        return conv_rules.conv(x, w, None, list(stride), list(padding), list(dilation), False, [0, 0], groups)

    x, w = _conv_inputs(case, np.float32)
    pullback, lower, out = _pullback_compiled_apart(rule, x, w)
    cotangent = _random(out.shape, np.float32, 2)
    labels = re.findall(r" convolution\(.*?dim_labels=([^,]+)", lower(cotangent).compile().as_text())
    assert labels and set(labels) == {"b01f_01io->b01f"}
    _assert_close(pullback(cotangent), jax.vjp(plain, x, w)[1](cotangent), np.float32)


def _conv_rule(x, w):  # the torch-facing rule, which chooses the lowering
    return conv_rules.conv(x, w, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1)


def _conv_backward_rule(g, x, w):
    return conv_rules.convolution_backward(g, x, w, [4], [1, 1], [0, 0], [1, 1], False, [0, 0], 1, [True, True, True])


def _conv_programs(platform):
    """StableHLO of the forward, its gradient, per-sample gradients and the backward rule."""
    x, w = _conv_inputs("2d", np.float32)
    cotangent = _random(jax.eval_shape(_conv_rule, x, w).shape, np.float32, 2)
    loss = lambda w, x: (_conv_rule(x[None], w) ** 2).sum()
    grad = jax.grad(lambda x, w: (_conv_rule(x, w) ** 2).sum(), argnums=(0, 1))
    forward = _lowered(_conv_rule, x, w, platform=platform)
    gradient = _lowered(grad, x, w, platform=platform)
    per_sample = _lowered(jax.vmap(jax.grad(loss), in_axes=(None, 0)), w, x, platform=platform)
    backward = _lowered(_conv_backward_rule, cotangent, x, w, platform=platform)
    return forward, gradient, per_sample, backward


def _conv_layouts(text: str) -> list[str]:
    """The layouts (``dim_numbers``) of each convolution in a StableHLO text."""
    return re.findall(r"stablehlo\.convolution.*?dim_numbers = (\[[^]]*\]x\[[^]]*\]->\[[^]]*\])", text)


UNPADDED_CONV_PADDED_ON_CPU = "pad = [[0, 1], [0, 0]]"  # platform_cpu._channels_last_conv
XLA_CPU_LAYOUTS = "[b, 0, 1, f]x[0, 1, i, o]->[b, 0, 1, f]"  # NHWC, HWIO: platform_cpu._channels_last_conv
TORCH_LAYOUTS = "[b, f, 0, 1]x[o, i, 0, 1]->[b, f, 0, 1]"  # NCHW, OIHW: the plain rule
SCAN = "stablehlo.while"  # platform_cpu._conv_as_dots's loop over kernel offsets


@pytest.mark.parametrize("platform", [None, "cpu"], ids=["this-machine", "cpu"])
def test_conv_lowered_for_cpu_is_tuned(platform):
    forward, gradient, per_sample, backward = _conv_programs(platform)
    assert UNPADDED_CONV_PADDED_ON_CPU in forward
    for program in (forward, gradient, backward):  # every convolution, the input gradient's too
        assert set(_conv_layouts(program)) == {XLA_CPU_LAYOUTS}
    for program in (gradient, per_sample, backward):
        assert SCAN in program


@pytest.mark.parametrize("platform", ["cuda", "tpu"])
def test_conv_lowered_for_another_platform_is_plain(platform):
    forward, gradient, per_sample, backward = _conv_programs(platform)
    assert UNPADDED_CONV_PADDED_ON_CPU not in forward and _conv_layouts(forward) == [TORCH_LAYOUTS]
    for program in (gradient, per_sample, backward):
        assert SCAN not in program and "stablehlo.convolution" in program
        assert XLA_CPU_LAYOUTS not in program


# --------------------------------------------------------------------------- matmul

M, K, N, B = 3, 5, 7, 4  # a is (M, K); each of the B matrices stacked in b is (K, N)


def _plain_vmapped(a, b):
    return jax.vmap(lambda a, b: jnp.matmul(a, b, precision=HIGHEST), in_axes=(None, 0))(a, b)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_weight_major_matmul_matches_plain(dtype):
    tuned = lambda a, b: platform_cpu.weight_major_matmul(a, b, None)
    with jax.enable_x64(dtype == np.float64):
        a, b = _random((M, K), dtype, 0), _random((B, K, N), dtype, 1)
        cotangent = _random((B, M, N), dtype, 2)

        def grads(mm):
            return jax.jit(jax.grad(lambda a, b: (mm(a, b) * cotangent).sum(), argnums=(0, 1)))(a, b)

        _assert_close(jax.jit(tuned)(a, b), jax.jit(_plain_vmapped)(a, b), dtype)
        _assert_close(grads(tuned), grads(_plain_vmapped), dtype)


# The rule's custom_vmap and custom_jvp under every arrangement of transforms, against
# jnp.matmul: which operands vmap batches, nesting, and derivatives of either mode.
MATMUL_TRANSFORMS = {
    "vmap-b": lambda mm: jax.vmap(mm, in_axes=(None, 0)),
    "vmap-a": lambda mm: jax.vmap(mm, in_axes=(0, None)),
    "vmap-both": lambda mm: jax.vmap(mm),
    "vmap-b-axis-1": lambda mm: jax.vmap(mm, in_axes=(None, 2), out_axes=1),
    "vmap-vmap-b": lambda mm: jax.vmap(jax.vmap(mm, in_axes=(None, 0)), in_axes=(None, 0)),
    "vmap-grad": lambda mm: jax.vmap(jax.grad(lambda a, b: jnp.tanh(mm(a, b)).sum(), (0, 1)), in_axes=(None, 0)),
    "grad-vmap": lambda mm: jax.grad(lambda a, b: jnp.tanh(jax.vmap(mm, in_axes=(None, 0))(a, b)).sum(), (0, 1)),
    "vmap-jacfwd": lambda mm: jax.vmap(jax.jacfwd(lambda a, b: jnp.tanh(mm(a, b)), (0, 1)), in_axes=(None, 0)),
    "hessian-vmap": lambda mm: jax.hessian(lambda a, b: jnp.tanh(jax.vmap(mm, in_axes=(None, 0))(a, b)).sum()),
    "grad-of-jvp": lambda mm: jax.grad(
        lambda a, b: jax.jvp(lambda b: jnp.tanh(jax.vmap(mm, in_axes=(None, 0))(a, b)), (b,), (b,))[1].sum()
    ),
}
MATMUL_INPUTS = {  # (a, b) shapes where not ((M, K), (B, K, N))
    "vmap-a": ((B, M, K), (K, N)),
    "vmap-both": ((B, M, K), (B, K, N)),
    "vmap-b-axis-1": ((M, K), (K, B, N)),
    "vmap-vmap-b": ((M, K), (2, B, K, N)),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("transform", list(MATMUL_TRANSFORMS))
def test_matmul_rule_under_transforms_matches_plain(transform, dtype):
    shape_a, shape_b = MATMUL_INPUTS.get(transform, ((M, K), (B, K, N)))
    plain = lambda a, b: jnp.matmul(a, b, precision=HIGHEST)
    with jax.enable_x64(dtype == np.float64):
        a, b = _random(shape_a, dtype, 0), _random(shape_b, dtype, 1)
        build = MATMUL_TRANSFORMS[transform]
        _assert_close(jax.jit(build(linalg_rules._matmul))(a, b), jax.jit(build(plain))(a, b), dtype)


def _matmul_operands(text: str) -> list[tuple[str, str]]:
    """The operand types of each dot_general in a StableHLO text."""
    return re.findall(r"stablehlo\.dot_general .*?: \((tensor<[^>]*>), (tensor<[^>]*>)\)", text)


WEIGHT_MAJOR = (f"tensor<{B}x{K}x{N}xf32>", f"tensor<{M}x{K}xf32>")  # the stacked b on the left
PLAIN = (f"tensor<{M}x{K}xf32>", f"tensor<{B}x{K}x{N}xf32>")


def _ensemble_program(platform):
    a, b = _random((M, K), np.float32, 0), _random((B, K, N), np.float32, 1)
    return _lowered(jax.vmap(linalg_rules._matmul, in_axes=(None, 0)), a, b, platform=platform)


@pytest.mark.parametrize("platform", [None, "cpu"], ids=["this-machine", "cpu"])
def test_matmul_lowered_for_cpu_is_weight_major(platform):
    assert _matmul_operands(_ensemble_program(platform)) == [WEIGHT_MAJOR]


@pytest.mark.parametrize("platform", ["cuda", "tpu"])
def test_matmul_lowered_for_another_platform_is_plain(platform):
    assert _matmul_operands(_ensemble_program(platform)) == [PLAIN]


def test_torch_linear_over_stacked_weights_is_weight_major_on_cpu():
    """End to end: an ensemble's ``F.linear`` reaches the rule with only the weights batched."""
    linear = torchjax.to_jax(lambda x, w: F.linear(x, w))
    x, w = _random((M, K), np.float32, 0), _random((B, N, K), np.float32, 1)
    ensemble = jax.vmap(linear, in_axes=(None, 0))
    assert (f"tensor<{B}x{K}x{N}xf32>", f"tensor<{M}x{K}xf32>") in _matmul_operands(_lowered(ensemble, x, w))
    assert _matmul_operands(_lowered(ensemble, x, w, platform="cuda")) == [
        (f"tensor<{M}x{K}xf32>", f"tensor<{B}x{K}x{N}xf32>")
    ]
    want = torch.func.vmap(F.linear, in_dims=(None, 0))(torch.from_numpy(x), torch.from_numpy(w))
    np.testing.assert_allclose(np.asarray(jax.jit(ensemble)(x, w)), want.numpy(), rtol=1e-5, atol=1e-5)
