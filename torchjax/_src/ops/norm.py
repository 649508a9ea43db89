"""Batch, layer and group normalization (forward, and backward through ``jax.vjp``).

``F.batch_norm`` reaches ``aten.native_batch_norm``, whose schema does not declare that
it writes ``running_mean``/``running_var``; torch's decomposition of it (and of the
mutating ``_native_batch_norm_legit``) writes them with ``copy_``, which the dispatcher
tracks, so those two are left to the decomposition and every functional variant gets a
direct rule here.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from ..registry import aten, register


def _acc(dtype):
    return jnp.float32 if dtype in (jnp.bfloat16, jnp.float16) else dtype


def _channel_shape(x):
    return (1, -1) + (1,) * (x.ndim - 2)


def _affine(out, weight, bias, shape):
    if weight is not None:
        out = out * weight.reshape(shape).astype(out.dtype)
    if bias is not None:
        out = out + bias.reshape(shape).astype(out.dtype)
    return out


def _batch_stats(x, eps):
    axes = (0, *range(2, x.ndim))
    xa = x.astype(_acc(x.dtype))
    mean = jnp.mean(xa, axis=axes)
    var = jnp.mean(jnp.square(xa - mean.reshape(_channel_shape(x))), axis=axes)
    return mean, var, lax.rsqrt(var + eps)


def _saved(dtype, *stats):
    # The saved mean and 1/std outputs of native_layer_norm and native_batch_norm carry no
    # gradient in torch (their backward uses only the output's cotangent).
    return tuple(lax.stop_gradient(s).astype(dtype) for s in stats)


def _batch_norm_train(x, weight, bias, running_mean, running_var, momentum, eps):
    mean, var, rstd = _batch_stats(x, eps)
    shape = _channel_shape(x)
    xa = x.astype(_acc(x.dtype))
    out = _affine((xa - mean.reshape(shape)) * rstd.reshape(shape), weight, bias, shape)
    new_mean = new_var = None
    if running_mean is not None:
        new_mean = (momentum * mean + (1 - momentum) * running_mean).astype(running_mean.dtype)
    if running_var is not None:
        n = x.size // x.shape[1]
        unbiased = var * (n / max(n - 1, 1))  # torch updates running_var with the unbiased variance
        new_var = (momentum * unbiased + (1 - momentum) * running_var).astype(running_var.dtype)
    return out.astype(x.dtype), *_saved(x.dtype, mean, rstd), new_mean, new_var


def _batch_norm_eval(x, weight, bias, running_mean, running_var, eps):
    shape = _channel_shape(x)
    acc = _acc(x.dtype)
    rstd = lax.rsqrt(running_var.astype(acc) + eps)
    out = (x.astype(acc) - running_mean.astype(acc).reshape(shape)) * rstd.reshape(shape)
    return _affine(out, weight, bias, shape).astype(x.dtype)


@register(*aten("_native_batch_norm_legit_no_training"))
def _native_batch_norm_legit_no_training(input, weight, bias, running_mean, running_var, momentum, eps):
    # torch's CPU kernel returns empty saved statistics in eval mode
    empty = jnp.zeros((0,), _acc(input.dtype))
    return _batch_norm_eval(input, weight, bias, running_mean, running_var, eps), empty, empty


@register(*aten("_native_batch_norm_legit", "no_stats"))
def _native_batch_norm_legit_no_stats(input, weight, bias, training, momentum, eps):
    return _batch_norm_train(input, weight, bias, None, None, momentum, eps)[:3]


@register(*aten("_native_batch_norm_legit_functional"))
def _native_batch_norm_legit_functional(input, weight, bias, running_mean, running_var, training, momentum, eps):
    if training:
        return _batch_norm_train(input, weight, bias, running_mean, running_var, momentum, eps)
    out = _batch_norm_eval(input, weight, bias, running_mean, running_var, eps)
    empty = jnp.zeros((0,), input.dtype)
    return out, empty, empty, running_mean, running_var


@register(*aten("native_layer_norm"))
def native_layer_norm(input, normalized_shape, weight, bias, eps):
    axes = tuple(range(input.ndim - len(normalized_shape), input.ndim))
    xa = input.astype(_acc(input.dtype))
    mean = jnp.mean(xa, axis=axes, keepdims=True)
    var = jnp.mean(jnp.square(xa - mean), axis=axes, keepdims=True)
    rstd = lax.rsqrt(var + eps)
    out = (xa - mean) * rstd
    if weight is not None:
        out = out * weight.astype(out.dtype)
    if bias is not None:
        out = out + bias.astype(out.dtype)
    return out.astype(input.dtype), *_saved(input.dtype, mean, rstd)


@register(*aten("native_group_norm"))
def native_group_norm(input, weight, bias, N, C, HxW, group, eps):
    xa = input.astype(_acc(input.dtype)).reshape(N, group, -1)
    mean = jnp.mean(xa, axis=-1)
    var = jnp.mean(jnp.square(xa - mean[..., None]), axis=-1)
    rstd = lax.rsqrt(var + eps)
    out = ((xa - mean[..., None]) * rstd[..., None]).reshape(input.shape)
    out = _affine(out, weight, bias, _channel_shape(input))
    # unlike layer and batch norm, torch's group norm backward also takes the cotangents of mean and rstd
    return out.astype(input.dtype), mean.astype(input.dtype), rstd.astype(input.dtype)


def _masked(grads, output_mask):
    return tuple(g if m else None for g, m in zip(grads, output_mask))


def _normalized_grad(g, xhat, rstd, axes):
    """d/dx of (x - mean(x)) * rstd(x) given the upstream ``g``, over ``axes``."""
    return rstd * (g - jnp.mean(g, axes, keepdims=True) - xhat * jnp.mean(g * xhat, axes, keepdims=True))


@register(*aten("native_layer_norm_backward"))
def native_layer_norm_backward(grad_out, input, normalized_shape, mean, rstd, weight, bias, output_mask):
    acc = _acc(input.dtype)
    axes = tuple(range(input.ndim - len(normalized_shape), input.ndim))
    lead = tuple(range(input.ndim - len(normalized_shape)))
    dy = grad_out.astype(acc)
    xhat = (input.astype(acc) - mean.astype(acc)) * rstd.astype(acc)
    g = dy if weight is None else dy * weight.astype(acc)
    grad_input = _normalized_grad(g, xhat, rstd.astype(acc), axes).astype(input.dtype)
    grad_weight = None if weight is None else jnp.sum(dy * xhat, lead).astype(weight.dtype)
    grad_bias = None if bias is None else jnp.sum(dy, lead).astype(bias.dtype)
    return _masked((grad_input, grad_weight, grad_bias), output_mask)


@register(*aten("native_group_norm_backward"))
def native_group_norm_backward(grad_out, input, mean, rstd, weight, N, C, HxW, group, output_mask):
    acc = _acc(input.dtype)
    shape = _channel_shape(input)
    dy = grad_out.astype(acc)
    g = dy if weight is None else dy * weight.astype(acc).reshape(shape)
    xg = input.astype(acc).reshape(N, group, -1)
    m, r = mean.astype(acc)[..., None], rstd.astype(acc)[..., None]
    xhat = (xg - m) * r
    grad_input = _normalized_grad(g.reshape(N, group, -1), xhat, r, (-1,)).reshape(input.shape)
    spatial = (0, *range(2, input.ndim))
    grad_weight = jnp.sum(dy * xhat.reshape(input.shape), spatial)
    grad_bias = jnp.sum(dy, spatial)
    return _masked(
        (grad_input.astype(input.dtype), grad_weight.astype(input.dtype), grad_bias.astype(input.dtype)), output_mask
    )
