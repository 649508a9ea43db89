"""Activations, softmax, embedding, dropout, attention and losses."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import torch
from jax import lax

from ..errors import UnsupportedOpError
from ..registry import aten, register
from ..tensor import current_key
from ._common import Kind, jdtype, pointwise, promote, register_pointwise

_HIGHEST = lax.Precision.HIGHEST
_NONE, _MEAN, _SUM = 0, 1, 2  # torch's Reduction enum


def _reduce(loss, reduction):
    if reduction == _MEAN:
        return jnp.mean(loss)
    if reduction == _SUM:
        return jnp.sum(loss)
    return loss


# --------------------------------------------------------------------------- activations
# Rules compute in torch's opmath dtype (float32 for bfloat16), as torch's CPU kernels do.


def _gelu(x, approximate="none"):
    return jax.nn.gelu(x, approximate=approximate == "tanh")


def _elu(x, alpha=1.0, scale=1.0, input_scale=1.0):
    return jnp.where(x > 0, x * scale, (jnp.expm1(x * input_scale) * alpha) * scale)


def _leaky_relu(x, negative_slope=0.01):
    return jnp.where(x > 0, x, x * negative_slope)


def _hardtanh(x, min_val=-1.0, max_val=1.0):
    return jnp.clip(x, min_val, max_val)


def _softplus(x, beta=1.0, threshold=20.0):
    scaled = x * beta
    return jnp.where(scaled > threshold, x, jnp.log1p(jnp.exp(scaled)) / beta)


def _softshrink(x, lambd=0.5):
    return jnp.where(x > lambd, x - lambd, jnp.where(x < -lambd, x + lambd, jnp.zeros_like(x)))


def _hardshrink(x, lambd=0.5):
    return jnp.where((x > lambd) | (x < -lambd), x, jnp.zeros_like(x))


def _threshold(x, threshold, value):
    return jnp.where(x > threshold, x, jnp.asarray(value, x.dtype))


_ACTIVATIONS = {
    "gelu": _gelu,
    "silu": jax.nn.silu,
    "mish": lambda x: x * jnp.tanh(jax.nn.softplus(x)),
    "elu": _elu,
    "celu": lambda x, alpha=1.0: jnp.where(x > 0, x, alpha * jnp.expm1(x / alpha)),
    "leaky_relu": _leaky_relu,
    "hardsigmoid": lambda x: jnp.clip(x / 6 + 0.5, 0, 1),
    "hardswish": lambda x: x * jnp.clip(x + 3, 0, 6) / 6,
    "softplus": _softplus,
    "softshrink": _softshrink,
    "hardshrink": _hardshrink,
}
for _name, _fn in _ACTIVATIONS.items():
    register_pointwise(aten(_name), _fn, Kind.DEFAULT, n_tensors=1)

# hardtanh and threshold also take integer tensors (they are clamps/selects)
register_pointwise(aten("hardtanh"), _hardtanh, Kind.DEFAULT, n_tensors=1)
register_pointwise(aten("threshold"), _threshold, Kind.DEFAULT, n_tensors=1)


@register(*aten("log_sigmoid_forward"))
def log_sigmoid_forward(self):
    out = pointwise(jax.nn.log_sigmoid)(self)
    return out, jnp.zeros((0,), self.dtype)  # the buffer only the CUDA kernel fills


@register(*aten("glu"))
def glu(self, dim=-1):
    a, b = jnp.split(self, 2, axis=dim)
    return pointwise(lambda a, b: a * jax.nn.sigmoid(b))(a, b)


@register(*aten("_prelu_kernel"))
def _prelu_kernel(self, weight):
    return pointwise(lambda x, w: jnp.where(x > 0, x, w * x))(self, weight)


# --------------------------------------------------------------------------- softmax


def _softmax_rule(fn):
    def rule(self, dim, half_to_float):
        _, result = promote(self, kind=Kind.INT_TO_FLOAT)
        acc = jnp.float32 if self.dtype in (jnp.bfloat16, jnp.float16) else result
        x = self.astype(acc)
        out = fn(x[None], axis=0)[0] if x.ndim == 0 else fn(x, axis=dim)
        return out.astype(jnp.float32 if half_to_float else result)

    return rule


register(*aten("_softmax"))(_softmax_rule(jax.nn.softmax))
register(*aten("_log_softmax"))(_softmax_rule(jax.nn.log_softmax))


@register(*aten("_safe_softmax"))
def _safe_softmax(self, dim, dtype=None):
    # softmax, but 0 for a row that is entirely -inf (a fully masked attention row);
    # the row is made finite before the softmax so its gradient is 0, not NaN, as in
    # torch, whose backward reads the (zero) result
    out_dtype = jdtype(dtype) if dtype is not None else promote(self, kind=Kind.INT_TO_FLOAT)[1]
    acc = jnp.float32 if out_dtype in (jnp.bfloat16, jnp.float16) else out_dtype
    x = self.astype(acc)
    if x.ndim == 0:
        return jnp.where(jnp.isneginf(x), 0, 1).astype(out_dtype)
    masked = jnp.all(jnp.isneginf(x), axis=dim, keepdims=True)
    out = jax.nn.softmax(jnp.where(masked, 0, x), axis=dim)
    return jnp.where(masked, 0, out).astype(out_dtype)


# --------------------------------------------------------------------------- embedding


@register(*aten("embedding"))
def embedding(weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    rows = jnp.take(weight, indices, axis=0)
    # JAX differentiates the gather, not embedding_dense_backward: shape the gradient
    # here as torch's backward does, leaving the forward value bit-identical.
    if scale_grad_by_freq:
        counts = jnp.zeros(weight.shape[0], rows.dtype).at[indices].add(1)
        frozen = lax.stop_gradient(rows)
        rows = frozen + (rows - frozen) / counts[indices][..., None]
    if padding_idx is not None and padding_idx >= 0:
        rows = jnp.where((indices == padding_idx)[..., None], lax.stop_gradient(rows), rows)
    return rows


@register(*aten("embedding_dense_backward"))
def embedding_dense_backward(grad_output, indices, num_weights, padding_idx, scale_grad_by_freq):
    flat = indices.reshape(-1)
    grad = grad_output.reshape(flat.shape[0], -1)
    if padding_idx >= 0:
        grad = jnp.where((flat == padding_idx)[:, None], 0, grad)
    if scale_grad_by_freq:
        counts = jnp.zeros(num_weights, grad.dtype).at[flat].add(1)
        grad = grad / counts[flat][:, None]
    return jnp.zeros((num_weights, grad.shape[1]), grad_output.dtype).at[flat].add(grad)


@register(*aten("_embedding_bag"), *aten("_embedding_bag_forward_only"))
def _embedding_bag(
    weight,
    indices,
    offsets,
    scale_grad_by_freq=False,
    mode=0,
    sparse=False,
    per_sample_weights=None,
    include_last_offset=False,
    padding_idx=-1,
):
    if indices.ndim == 2:  # fixed-size bags: offsets are implied
        n_bags, bag_len = indices.shape
        offsets = jnp.arange(n_bags) * bag_len
        indices = indices.reshape(-1)
    n_bags = offsets.shape[0] - (1 if include_last_offset else 0)
    starts = offsets[:n_bags]
    position = jnp.arange(indices.shape[0])
    offset2bag = (jnp.searchsorted(starts, position, side="right") - 1).astype(indices.dtype)
    keep = indices != padding_idx if padding_idx >= 0 else jnp.ones(indices.shape, bool)
    if include_last_offset:
        keep = keep & (position < offsets[-1])
    rows = jnp.take(weight, indices, axis=0)
    if per_sample_weights is not None:
        rows = rows * per_sample_weights[:, None].astype(rows.dtype)
    segment = jnp.where(keep, offset2bag, n_bags)  # dropped entries go to a spare bag
    bag_size = jnp.zeros(n_bags + 1, indices.dtype).at[segment].add(1)[:n_bags]
    if mode == 2:
        out = jax.ops.segment_max(rows, segment, num_segments=n_bags + 1)[:n_bags]
        out = jnp.where((bag_size > 0)[:, None], out, 0)
        is_max = (rows == out[jnp.minimum(segment, n_bags - 1)]) & keep[:, None]
        cand = jnp.where(is_max, indices[:, None], jnp.iinfo(indices.dtype).max)
        max_indices = jax.ops.segment_min(cand, segment, num_segments=n_bags + 1)[:n_bags]
        max_indices = jnp.where((bag_size > 0)[:, None], max_indices, 0).astype(indices.dtype)
    else:
        out = jax.ops.segment_sum(jnp.where(keep[:, None], rows, 0), segment, num_segments=n_bags + 1)[:n_bags]
        if mode == 1:
            out = out / jnp.maximum(bag_size, 1)[:, None].astype(out.dtype)
        max_indices = bag_size
    return out.astype(weight.dtype), offset2bag, bag_size, max_indices


# --------------------------------------------------------------------------- dropout


@register(*aten("native_dropout"))
def native_dropout(input, p, train):
    if train is False or p == 0:
        return input, jnp.ones(input.shape, bool)
    keep = jax.random.bernoulli(current_key(), 1 - p, input.shape)
    scale = 0.0 if p >= 1 else 1 / (1 - p)
    return jnp.where(keep, input * jnp.asarray(scale, input.dtype), 0).astype(input.dtype), keep


def _rrelu(x, lower, upper, training):
    """(output, slopes): training draws each non-positive element's slope from U(lower, upper)."""
    acc = jnp.float32 if x.dtype in (jnp.bfloat16, jnp.float16) else x.dtype
    if not training:
        slope = jnp.asarray((lower + upper) / 2, acc)
        return jnp.where(x > 0, x, (x.astype(acc) * slope).astype(x.dtype)), None
    drawn = jax.random.uniform(current_key(), x.shape, acc, lower, upper)
    slopes = jnp.where(x <= 0, drawn, 1).astype(x.dtype)
    return jnp.where(x <= 0, (x.astype(acc) * drawn).astype(x.dtype), x), slopes


@register(*aten("rrelu_with_noise_functional"))
def rrelu_with_noise_functional(self, noise, lower=0.125, upper=1 / 3, training=False, generator=None):
    out, slopes = _rrelu(self, lower, upper, training)
    return out, noise if slopes is None else slopes.astype(noise.dtype)


# rrelu_with_noise itself (which writes the drawn slopes into ``noise``) is run by the
# dispatcher through this functional form, with the write applied to ``noise``.


# --------------------------------------------------------------------------- attention


def _attention(query, key, value, dropout_p, is_causal, attn_mask, scale, enable_gqa=False, dropout_mask=None):
    acc = jnp.float32 if query.dtype in (jnp.bfloat16, jnp.float16) else query.dtype
    q, k, v = (t.astype(acc) for t in (query, key, value))
    if k.ndim >= 3 and k.shape[-3] != q.shape[-3]:  # grouped-query attention
        rep = q.shape[-3] // k.shape[-3]
        k, v = jnp.repeat(k, rep, axis=-3), jnp.repeat(v, rep, axis=-3)
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = jnp.matmul(q * scale, jnp.swapaxes(k, -1, -2), precision=_HIGHEST)
    L, S = scores.shape[-2:]
    if is_causal:
        causal = jnp.tril(jnp.ones((L, S), bool))
        scores = jnp.where(causal, scores, -jnp.inf)
    if attn_mask is not None:
        if attn_mask.dtype == jnp.bool_:
            scores = jnp.where(attn_mask, scores, -jnp.inf)
        else:
            scores = scores + attn_mask.astype(acc)
    lse = jax.nn.logsumexp(scores, axis=-1)
    # rows with every key masked give 0, as torch's kernels do, rather than NaN
    weights = jnp.where(
        jnp.isneginf(lse)[..., None], 0, jnp.exp(scores - jnp.where(jnp.isneginf(lse), 0, lse)[..., None])
    )
    keep = None
    if dropout_p > 0:
        keep = (
            jax.random.bernoulli(current_key(), 1 - dropout_p, weights.shape) if dropout_mask is None else dropout_mask
        )
        weights = jnp.where(keep, weights / (1 - dropout_p), 0)
    out = jnp.matmul(weights, v, precision=_HIGHEST).astype(query.dtype)
    if keep is not None:
        _DROPOUT_MASKS.note(out, keep)
    return out, lse.astype(jnp.float32 if acc == jnp.float32 else acc), weights.astype(query.dtype)


class _MaskTable:
    """The dropout mask each attention output was computed with, for its backward op
    (torch's attention backward receives the forward's output, not its random state)."""

    def __init__(self, size: int = 256):
        self.size = size
        self._masks: dict[int, tuple] = {}

    def note(self, out, keep) -> None:
        if len(self._masks) >= self.size:
            self._masks.pop(next(iter(self._masks)))
        self._masks[id(out)] = (out, keep)

    def find(self, out):
        hit = self._masks.get(id(out))
        return hit[1] if hit is not None and hit[0] is out else None


_DROPOUT_MASKS = _MaskTable()


@register(*aten("_scaled_dot_product_flash_attention_for_cpu"))
def _scaled_dot_product_flash_attention_for_cpu(
    query, key, value, dropout_p=0.0, is_causal=False, *, attn_mask=None, scale=None
):
    out, lse, _ = _attention(query, key, value, dropout_p, is_causal, attn_mask, scale)
    return out, lse


@register(*aten("_scaled_dot_product_flash_attention_for_cpu_backward"))
def _scaled_dot_product_flash_attention_for_cpu_backward(
    grad_out, query, key, value, out, logsumexp, dropout_p, is_causal, *, attn_mask=None, scale=None
):
    """The attention's gradient (what ``loss.backward()`` in a traced training step calls):
    the pullback of the forward rule, on the dropout mask that forward drew."""
    keep = None
    if dropout_p > 0:
        keep = _DROPOUT_MASKS.find(out)
        if keep is None:
            raise UnsupportedOpError(
                "torchjax: the backward of scaled_dot_product_attention with dropout needs the "
                "forward's dropout mask, and this output was not computed by torchjax in this trace"
            )

    def forward(q, k, v):
        return _attention(q, k, v, dropout_p, is_causal, attn_mask, scale, dropout_mask=keep)[0]

    _, pullback = jax.vjp(forward, query, key, value)
    return pullback(grad_out.astype(out.dtype))


# nn.MultiheadAttention and nn.TransformerEncoderLayer take these fused "fast paths" in
# eval mode without grad, which is how a capture runs them.


def _linear(x, weight, bias):
    out = jnp.matmul(x, weight.T, precision=_HIGHEST)
    return out if bias is None else out + bias


def _fast_path_mask(mask, mask_type, batch):
    """A fused-path mask (True = masked out, or additive) as an sdpa mask over (B, H, L, S)."""
    if mask is None:
        return None
    if mask_type == 1 and mask.ndim == 2:  # key padding mask (B, S)
        mask = mask[:, None, None, :]
    return jnp.logical_not(mask) if mask.dtype == jnp.bool_ else mask


def _mha(query, key, value, embed_dim, num_head, qkv_weight, qkv_bias, proj_weight, proj_bias, mask, mask_type):
    wq, wk, wv = jnp.split(qkv_weight, 3)
    bq, bk, bv = jnp.split(qkv_bias, 3) if qkv_bias is not None else (None,) * 3

    def heads(x):
        b, n, _ = x.shape
        return x.reshape(b, n, num_head, embed_dim // num_head).transpose(0, 2, 1, 3)

    q, k, v = heads(_linear(query, wq, bq)), heads(_linear(key, wk, bk)), heads(_linear(value, wv, bv))
    out, _, weights = _attention(q, k, v, 0.0, False, _fast_path_mask(mask, mask_type, query.shape[0]), None)
    out = out.transpose(0, 2, 1, 3).reshape(query.shape[0], query.shape[1], embed_dim)
    return _linear(out, proj_weight, proj_bias), weights


@register(*aten("_native_multi_head_attention"))
def _native_multi_head_attention(
    query,
    key,
    value,
    embed_dim,
    num_head,
    qkv_weight,
    qkv_bias,
    proj_weight,
    proj_bias,
    mask=None,
    need_weights=True,
    average_attn_weights=True,
    mask_type=None,
):
    out, weights = _mha(
        query, key, value, embed_dim, num_head, qkv_weight, qkv_bias, proj_weight, proj_bias, mask, mask_type
    )
    if not need_weights:
        return out, jnp.zeros((0,), out.dtype)
    return out, (jnp.mean(weights, axis=1) if average_attn_weights else weights)


def _layer_norm(x, weight, bias, eps):
    mean = jnp.mean(x, -1, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), -1, keepdims=True)
    return (x - mean) * lax.rsqrt(var + eps) * weight + bias


@register(*aten("_transformer_encoder_layer_fwd"))
def _transformer_encoder_layer_fwd(
    src,
    embed_dim,
    num_heads,
    qkv_weight,
    qkv_bias,
    proj_weight,
    proj_bias,
    use_gelu,
    norm_first,
    eps,
    norm_weight_1,
    norm_bias_1,
    norm_weight_2,
    norm_bias_2,
    ffn_weight_1,
    ffn_bias_1,
    ffn_weight_2,
    ffn_bias_2,
    mask=None,
    mask_type=None,
):
    def attend(x):
        return _mha(x, x, x, embed_dim, num_heads, qkv_weight, qkv_bias, proj_weight, proj_bias, mask, mask_type)[0]

    def ffn(x):
        hidden = _linear(x, ffn_weight_1, ffn_bias_1)
        hidden = jax.nn.gelu(hidden, approximate=False) if use_gelu else jax.nn.relu(hidden)
        return _linear(hidden, ffn_weight_2, ffn_bias_2)

    if norm_first:
        x = src + attend(_layer_norm(src, norm_weight_1, norm_bias_1, eps))
        return x + ffn(_layer_norm(x, norm_weight_2, norm_bias_2, eps))
    x = _layer_norm(src + attend(src), norm_weight_1, norm_bias_1, eps)
    return _layer_norm(x + ffn(x), norm_weight_2, norm_bias_2, eps)


# --------------------------------------------------------------------------- losses


def _nll(self, target, weight, reduction, ignore_index, class_dim):
    classes = self.shape[class_dim] if self.ndim else 1
    w = jnp.ones(classes, self.dtype) if weight is None else weight.astype(self.dtype)
    valid = target != ignore_index
    safe = jnp.where(valid, target, 0)
    picked = jnp.take_along_axis(self, jnp.expand_dims(safe, class_dim), axis=class_dim)
    picked = jnp.squeeze(picked, class_dim)
    wt = jnp.where(valid, w[safe], 0)
    loss = -picked * wt
    if reduction == _NONE:
        return loss, jnp.zeros((), self.dtype)
    total_weight = jnp.sum(wt)
    if reduction == _SUM:
        return jnp.sum(loss), total_weight
    return jnp.sum(loss) / total_weight, total_weight


@register(*aten("nll_loss_forward"))
def nll_loss_forward(self, target, weight, reduction, ignore_index):
    if self.ndim == 1:  # a single sample: (C,) scores, 0-d target
        loss, total_weight = _nll(self[None], target[None], weight, reduction, ignore_index, 1)
        return (loss[0] if reduction == _NONE else loss), total_weight
    return _nll(self, target, weight, reduction, ignore_index, 1)


@register(*aten("nll_loss2d_forward"))
def nll_loss2d_forward(self, target, weight, reduction, ignore_index):
    return _nll(self, target, weight, reduction, ignore_index, 1)


def _loss(fn):
    """A two-tensor loss with torch's promotion and ``reduction`` handling."""

    def rule(self, target, reduction=_MEAN, *args):
        return _reduce(pointwise(lambda a, b: fn(a, b, *args))(self, target), reduction)

    return rule


def _smooth_l1(a, b, beta=1.0):
    d = jnp.abs(a - b)
    if beta == 0:
        return d
    return jnp.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta)


def _huber(a, b, delta=1.0):
    d = jnp.abs(a - b)
    return jnp.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta))


register(*aten("mse_loss"))(_loss(lambda a, b: jnp.square(a - b)))
register(*aten("smooth_l1_loss"))(_loss(_smooth_l1))
register(*aten("huber_loss"))(_loss(_huber))
register(*aten("soft_margin_loss"))(_loss(lambda a, b: jnp.log1p(jnp.exp(-a * b))))


@register(*aten("binary_cross_entropy"))
def binary_cross_entropy(self, target, weight=None, reduction=_MEAN):
    # torch clamps the logs at -100 so that 0 * log(0) stays finite
    def fn(x, y):
        return -(y * jnp.maximum(jnp.log(x), -100) + (1 - y) * jnp.maximum(jnp.log1p(-x), -100))

    loss = pointwise(fn)(self, target)
    if weight is not None:
        loss = loss * weight.astype(loss.dtype)
    return _reduce(loss, reduction)


@register(*aten("binary_cross_entropy_with_logits"))
def binary_cross_entropy_with_logits(self, target, weight=None, pos_weight=None, reduction=_MEAN):
    def fn(x, y):
        log_sig_neg = jax.nn.log_sigmoid(-x)  # log(1 - sigmoid(x))
        if pos_weight is None:
            return (1 - y) * x - log_sig_neg - x
        pw = pos_weight.astype(x.dtype)
        return (1 - y) * x - (1 + (pw - 1) * y) * (log_sig_neg + x)

    acc, result = promote(self, target)
    loss = fn(self.astype(acc), target.astype(acc))
    if weight is not None:
        loss = loss * weight.astype(acc)
    return _reduce(loss, reduction).astype(result)


# F.linear_cross_entropy(options=...) calls torch's chunked custom ops (namespace
# torch_nn, defined when torch.nn.modules.linear_cross_entropy is imported). Chunking
# bounds torch's eager memory; under XLA one fused expression is the better program.
try:
    import torch.nn.modules.linear_cross_entropy  # defines torch.ops.torch_nn

    _TORCH_NN = torch.ops.torch_nn
    _CHUNKED = (_TORCH_NN._linear_cross_entropy_batch_chunked.default,)
    _CHUNKED_NONE = (_TORCH_NN._linear_cross_entropy_batch_chunked_no_reduction.default,)
except (ImportError, AttributeError):  # a torch without linear_cross_entropy
    _CHUNKED = _CHUNKED_NONE = ()


def _linear_ce_rows(input, linear_weight, target, linear_bias, weight, ignore_index):
    """Per-row loss W[t] * -log_softmax(x A^T + b)[t] (0 on ignored rows), and the rows' weights."""
    acc = jnp.float32 if input.dtype in (jnp.bfloat16, jnp.float16) else input.dtype
    logits = jnp.matmul(input.astype(acc), linear_weight.astype(acc).T, precision=_HIGHEST)
    if linear_bias is not None:
        logits = logits + linear_bias.astype(acc)
    ignored = target == ignore_index
    safe = jnp.where(ignored, 0, target)
    picked = jnp.take_along_axis(jax.nn.log_softmax(logits, axis=-1), safe[:, None], axis=-1)[:, 0]
    row_weight = jnp.ones(target.shape, acc) if weight is None else weight.astype(acc)[safe]
    row_weight = jnp.where(ignored, 0, row_weight)
    return -picked * row_weight, row_weight


@register(*_CHUNKED)
def _linear_cross_entropy_batch_chunked(
    input, linear_weight, target, linear_bias, weight, reduction, ignore_index, label_smoothing,
    batch_chunk_size, acc_policy, acc_dtype, allow_retain_graph,
    compute_input_grad, compute_linear_weight_grad, compute_linear_bias_grad,
):  # fmt: skip
    def loss_of(input, linear_weight, linear_bias):
        rows, row_weight = _linear_ce_rows(input, linear_weight, target, linear_bias, weight, ignore_index)
        total = jnp.sum(rows)
        return total / jnp.sum(row_weight) if reduction == "mean" else total

    loss, pullback = jax.vjp(loss_of, input, linear_weight, linear_bias)
    # torch returns the gradients it precomputes for its backward; empty ones when not asked
    grads = pullback(jnp.ones_like(loss))
    wanted = (compute_input_grad, compute_linear_weight_grad, compute_linear_bias_grad and linear_bias is not None)
    empty = (jnp.zeros((0, 0), input.dtype), jnp.zeros((0, 0), input.dtype), jnp.zeros((0,), input.dtype))
    return (loss.astype(input.dtype), *(g.astype(input.dtype) if w else e for g, w, e in zip(grads, wanted, empty)))


@register(*_CHUNKED_NONE)
def _linear_cross_entropy_batch_chunked_no_reduction(
    input, linear_weight, target, linear_bias, weight, ignore_index, batch_chunk_size, acc_policy, acc_dtype
):
    return _linear_ce_rows(input, linear_weight, target, linear_bias, weight, ignore_index)[0].astype(input.dtype)


# --------------------------------------------------------------------------- recurrent
# On CPU, torch's C++ LSTM (a CompositeImplicit op, decomposed before torchjax sees it)
# hands float32 inference to oneDNN, one layer and direction at a time; the other RNNs
# decompose into matmuls and pointwise ops.

_LSTM = 2  # ideep::rnn_kind::LSTM, the only mode torch sends to mkldnn_rnn_layer


@register(*aten("mkldnn_rnn_layer"))
def mkldnn_rnn_layer(
    input, w_ih, w_hh, b_ih, b_hh, hx, cx, reverse, batch_sizes, mode, hidden_size, num_layers, has_biases,
    bidirectional, batch_first, train,
):  # fmt: skip
    # torch's callers transpose to time-major first and the kernel ignores batch_first.
    if mode != _LSTM or batch_sizes:
        raise NotImplementedError(f"mkldnn_rnn_layer: mode={mode}, batch_sizes={batch_sizes} (only unpacked LSTM)")
    gates_x = jnp.matmul(input, w_ih.T, precision=_HIGHEST)
    if has_biases:
        gates_x = gates_x + (b_ih + b_hh)

    def step(carry, gx):
        h, c = carry
        gates = gx + jnp.matmul(h, w_hh.T, precision=_HIGHEST)
        i, f, g, o = jnp.split(gates, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    (hy, cy), output = lax.scan(step, (hx.astype(input.dtype), cx.astype(input.dtype)), gates_x, reverse=reverse)
    return output, hy, cy, jnp.zeros((0,), jnp.uint8)


# --------------------------------------------------------------------------- CTC


def _log_add(*terms):
    """log(sum(exp(terms))) that stays -inf, with a zero (not NaN) gradient, when every term is -inf."""
    top = lax.stop_gradient(functools.reduce(jnp.maximum, terms))
    top = jnp.where(jnp.isneginf(top), 0, top)
    total = sum(jnp.exp(t - top) for t in terms)
    empty = total == 0
    return jnp.where(empty, -jnp.inf, jnp.log(jnp.where(empty, 1, total)) + top)


def _padded_targets(targets, target_lengths, batch):
    """(N, S) targets: torch takes them padded (2-D) or concatenated (1-D)."""
    if targets.ndim == 2:
        return targets
    lengths = jnp.reshape(jnp.asarray(target_lengths), -1)
    # a concatenation's longest target is data-dependent under tracing; its total length bounds it
    width = max(target_lengths, default=0) if isinstance(target_lengths, (list, tuple)) else targets.shape[0]
    offsets = jnp.cumsum(lengths) - lengths
    index = jnp.minimum(offsets[:, None] + jnp.arange(width), max(targets.shape[0] - 1, 0))
    return targets[index] if targets.shape[0] else jnp.zeros((batch, width), targets.dtype)


@register(*aten("_ctc_loss", "default", "Tensor"))
def _ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, zero_infinity=False):
    # Graves et al. (2006), eq. (6)-(8): the forward variable over the blank-extended
    # target l' = (blank, l1, blank, l2, ..., blank), in log space, scanned over time.
    unbatched = log_probs.ndim == 2
    if unbatched:
        log_probs, targets = log_probs[:, None], targets[None]
    T, N, _ = log_probs.shape
    targets = _padded_targets(targets, target_lengths, N)
    # lengths come as int lists, or as tensors (0-d for an unbatched call)
    input_lengths, target_lengths = (
        jnp.reshape(jnp.asarray(input_lengths), -1),
        jnp.reshape(jnp.asarray(target_lengths), -1),
    )
    S = 2 * targets.shape[1] + 1
    s = jnp.arange(S)
    extended = jnp.where(s % 2 == 0, blank, targets[:, jnp.maximum((s - 1) // 2, 0)]).astype(jnp.int32)  # (N, S)
    # a skip from s-2 to s is allowed between different labels only
    skip = (s >= 2) & (extended != jnp.roll(extended, 2, axis=1))
    valid = s < 2 * target_lengths[:, None] + 1
    emit = jnp.take_along_axis(log_probs, jnp.broadcast_to(extended[None], (T, N, S)), axis=2)  # (T, N, S)
    neginf = jnp.asarray(-jnp.inf, log_probs.dtype)
    alpha0 = jnp.where((s == 0) | ((s == 1) & (target_lengths[:, None] > 0)), emit[0], neginf)

    def step(alpha, inputs):
        t, e = inputs
        prev1 = jnp.pad(alpha, ((0, 0), (1, 0)), constant_values=-jnp.inf)[:, :-1]
        prev2 = jnp.where(skip, jnp.pad(alpha, ((0, 0), (2, 0)), constant_values=-jnp.inf)[:, :-2], neginf)
        new = jnp.where(valid, _log_add(alpha, prev1, prev2) + e, neginf)
        new = jnp.where((t < input_lengths)[:, None], new, alpha)  # a finished sequence keeps its alphas
        return new, new

    last, alphas = lax.scan(step, alpha0, (jnp.arange(1, T), emit[1:]))
    log_alpha = jnp.concatenate([alpha0[None], alphas]).transpose(1, 0, 2)
    end = 2 * target_lengths
    l1 = jnp.take_along_axis(last, end[:, None], axis=1)[:, 0]
    l2 = jnp.take_along_axis(last, jnp.maximum(end - 1, 0)[:, None], axis=1)[:, 0]
    nll = -jnp.where(target_lengths > 0, _log_add(l1, l2), l1)
    # torch's backward (Graves eq. 16) is the gradient with respect to the logits under
    # an assumed log_softmax: the true one plus exp(log_probs) over each sequence's
    # steps. A term worth exactly 0 whose gradient is that, to agree with it.
    probs = jnp.exp(log_probs)
    steps = (jnp.arange(T)[:, None] < input_lengths[None, :])[..., None]
    nll = nll + jnp.sum(jnp.where(steps, probs - lax.stop_gradient(probs), 0), axis=(0, 2))
    if unbatched:
        return nll[0], log_alpha[0]
    return nll, log_alpha
