"""A model zoo converted by torchjax and matched to torch eager.

Real architectures with random weights, built here (no hub downloads): GPT-2 and BERT
from ``transformers``, a ResNet-18-style CNN with BatchNorm, LSTM and GRU sequence
models, and a model with Dropout in training mode. For each: the ``to_jax`` forward
under ``jax.jit`` matches torch eager, and the gradient of a loss with respect to every
parameter through ``torchjax.func.grad`` matches ``torch.func.grad``. Sizes are tiny so
the whole file runs in seconds on one core.
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # random weights only: never reach the hub

import jax
import pytest
import torch
import torch.nn.functional as F

import torchjax

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()

DTYPES = [torch.float32, torch.float64]
# Max-norm relative error: max|actual - expected| / max|expected|.
FORWARD_TOL = {torch.float32: 1e-5, torch.float64: 1e-10}
GRAD_TOL = {torch.float32: 1e-4, torch.float64: 1e-10}


def rel_err(actual, expected, floor: float = 0.0) -> float:
    actual, expected = torch.as_tensor(actual).double(), torch.as_tensor(expected).detach().double()
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    return float((actual - expected).abs().max() / max(expected.abs().max().item(), floor, 1e-30))


def assert_tree_close(actual, expected, tol, what=""):
    """Tensor leaves of ``actual`` within ``tol`` (max-norm relative) of ``expected``; returns the worst.

    A leaf whose true value is ~0 (a key bias's gradient: softmax ignores a per-row
    shift) is measured against a thousandth of the largest leaf instead of itself.
    """
    if not isinstance(expected, dict):
        err = rel_err(actual, expected)
        assert err <= tol, f"{what}: relative error {err:.3g} > {tol:g}"
        return err
    assert set(actual) == set(expected), (what, set(actual) ^ set(expected))
    floor = 1e-3 * max(float(v.detach().abs().max()) for v in expected.values())
    worst = 0.0
    for k in expected:
        err = rel_err(actual[k], expected[k], floor)
        assert err <= tol, f"{what}[{k}]: relative error {err:.3g} > {tol:g}"
        worst = max(worst, err)
    return worst


@contextlib.contextmanager
def no_torch_func_fallback():
    """torchjax.func falls back to torch.func (with a warning) on untraceable code; here that is a failure."""
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*running it with torch.func instead")
        yield


def x64_for(dtype):
    # A user's float64 JAX program runs with x64 on; float32 runs as JAX's default (x64 off).
    return jax.enable_x64(dtype == torch.float64)


def jax_forward(model, args, kwargs, dtype):
    """``to_jax(model)`` applied under ``jax.jit``; returns (output, new_buffers) as torch.

    Tensor kwargs are jit arguments; flags (``use_cache=False``) stay Python values, closed
    over, as a JAX user writes them (jit would otherwise turn them into traced arrays).
    """
    params, buffers, apply = torchjax.to_jax(model)
    tensors = {k: v for k, v in kwargs.items() if isinstance(v, torch.Tensor)}
    flags = {k: v for k, v in kwargs.items() if k not in tensors}
    step = jax.jit(lambda p, b, args, kw: apply(p, b, *args, **kw, **flags))
    with x64_for(dtype):
        out, new_buffers = step(params, buffers, torchjax.to_jax_array(args), torchjax.to_jax_array(tensors))
    return torchjax.to_torch(out), torchjax.to_torch(new_buffers)


def params_of(model):
    return {k: v.detach() for k, v in model.named_parameters()}


def grads_match(loss, params, dtype, what):
    expected = torch.func.grad(loss)(params)
    with no_torch_func_fallback(), x64_for(dtype):
        actual = torchjax.func.grad(loss)(params)
    for k, v in actual.items():
        assert v.dtype == dtype, (k, v.dtype)
    return assert_tree_close(actual, expected, GRAD_TOL[dtype], what)


def report(name, **errs):
    print(
        f"\n[zoo] {name}: " + ", ".join(f"{k}={v:.2e}" if isinstance(v, float) else f"{k}={v}" for k, v in errs.items())
    )


# ---------------------------------------------------------------------------- GPT-2


def gpt2(dtype=torch.float32):
    cfg = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=1000, n_positions=64,
                                  bos_token_id=0, eos_token_id=0)  # fmt: skip
    return transformers.GPT2LMHeadModel(cfg).to(dtype).eval()


def gpt2_inputs():
    ids = torch.randint(0, 1000, (2, 16))
    mask = torch.ones(2, 16, dtype=torch.int64)
    mask[1, 11:] = 0  # right padding on the second sequence
    positions = torch.arange(16).expand(2, 16)
    return ids, mask, positions


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_gpt2_forward(dtype):
    model = gpt2(dtype)
    ids, mask, positions = gpt2_inputs()
    kwargs = dict(attention_mask=mask, position_ids=positions, use_cache=False)
    expected = model(ids, **kwargs)
    out, _ = jax_forward(model, (ids,), kwargs, dtype)
    assert type(out) is type(expected)  # CausalLMOutputWithCrossAttentions, not a dict
    assert out.logits.dtype == dtype
    err = assert_tree_close(out.logits, expected.logits, FORWARD_TOL[dtype], "logits")
    report(f"gpt2 forward {dtype}", max_rel=err)


def test_gpt2_first_call_time():
    model = gpt2()
    ids, _, _ = gpt2_inputs()
    fast = torchjax.jit(model)
    start = time.perf_counter()
    out = fast(ids, use_cache=False)
    first = time.perf_counter() - start
    start = time.perf_counter()
    fast(ids, use_cache=False)
    second = time.perf_counter() - start
    assert type(out).__name__ == "CausalLMOutputWithCrossAttentions"
    assert rel_err(out.logits, model(ids, use_cache=False).logits) <= FORWARD_TOL[torch.float32]
    report("gpt2 torchjax.jit", first_call_s=f"{first:.2f}", second_call_s=f"{second:.4f}")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_gpt2_grad_with_tied_lm_head(dtype):
    model = gpt2(dtype)
    assert model.lm_head.weight is model.transformer.wte.weight
    ids, mask, positions = gpt2_inputs()
    params = params_of(model)
    assert "lm_head.weight" not in params  # one tied parameter, reached twice

    def loss(p):
        kwargs = dict(attention_mask=mask, position_ids=positions, use_cache=False)
        if dtype == torch.float32:  # HF's own LM loss; it upcasts logits to float32, so float64 uses ours
            return torch.func.functional_call(model, p, (ids,), dict(kwargs, labels=ids)).loss
        logits = torch.func.functional_call(model, p, (ids,), kwargs).logits
        return F.cross_entropy(logits[:, :-1].reshape(-1, 1000), ids[:, 1:].reshape(-1))

    err = grads_match(loss, params, dtype, "gpt2 grad")
    report(f"gpt2 grad {dtype}", max_rel=err)


def test_gpt2_jax_grad_through_to_jax_sees_tied_weight():
    """jax.grad over ``apply``: the tied wte/lm_head gradient is the sum of both uses, as in torch."""
    model = gpt2(torch.float64)
    ids, mask, _ = gpt2_inputs()
    params, buffers, apply = torchjax.to_jax(model)
    assert "lm_head.weight" not in params

    def lm_loss(logits, ids):
        return F.cross_entropy(logits[:, :-1].reshape(-1, 1000), ids[:, 1:].reshape(-1))

    jax_lm_loss = torchjax.to_jax(lm_loss)

    def loss(p, ids, mask):
        out, _ = apply(p, buffers, ids, attention_mask=mask, use_cache=False)
        return jax_lm_loss(out.logits, ids)

    with jax.enable_x64(True):
        grads = jax.jit(jax.grad(loss))(params, *torchjax.to_jax_array((ids, mask)))

    def torch_loss(p):
        return lm_loss(
            torch.func.functional_call(model, p, (ids,), dict(attention_mask=mask, use_cache=False)).logits, ids
        )

    expected = torch.func.grad(torch_loss)(params_of(model))
    assert_tree_close(torchjax.to_torch(grads), expected, GRAD_TOL[torch.float64], "jax.grad(apply)")


def test_gpt2_cache_output_is_a_pytree():
    model = gpt2()
    ids, _, _ = gpt2_inputs()
    expected = model(ids, use_cache=True)
    out, _ = jax_forward(model, (ids,), dict(use_cache=True), torch.float32)
    layer = out.past_key_values.layers[0]
    assert isinstance(out.past_key_values, type(expected.past_key_values))
    assert rel_err(layer.keys, expected.past_key_values.layers[0].keys) <= FORWARD_TOL[torch.float32]
    # torch in, torch out: the cache's layers hold torch tensors again
    cached = torchjax.jit(lambda i: model(i, use_cache=True))(ids).past_key_values
    for got, want in zip(cached.layers, expected.past_key_values.layers):
        assert isinstance(got.values, torch.Tensor)
        assert rel_err(got.values, want.values) <= FORWARD_TOL[torch.float32]


# ---------------------------------------------------------------------------- BERT


def bert(dtype=torch.float32):
    cfg = transformers.BertConfig(vocab_size=500, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=128, max_position_embeddings=64, num_labels=3)  # fmt: skip
    return transformers.BertForSequenceClassification(cfg).to(dtype).eval()


def bert_inputs():
    ids = torch.randint(0, 500, (3, 12))
    mask = torch.ones(3, 12, dtype=torch.int64)
    mask[1, 8:] = 0
    mask[2, 5:] = 0
    token_types = torch.zeros(3, 12, dtype=torch.int64)
    token_types[:, 6:] = 1
    return ids, mask, token_types


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_bert_forward_with_padding_mask(dtype):
    model = bert(dtype)
    ids, mask, token_types = bert_inputs()
    kwargs = dict(attention_mask=mask, token_type_ids=token_types, output_hidden_states=True)
    expected = model(ids, **kwargs)
    out, _ = jax_forward(model, (ids,), kwargs, dtype)
    assert type(out) is type(expected)  # SequenceClassifierOutput
    err = assert_tree_close(out.logits, expected.logits, FORWARD_TOL[dtype], "logits")
    hidden = max(rel_err(a, b) for a, b in zip(out.hidden_states, expected.hidden_states, strict=True))
    assert hidden <= FORWARD_TOL[dtype]
    report(f"bert forward {dtype}", logits=err, hidden_states=hidden)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_bert_grad(dtype):
    model = bert(dtype)
    ids, mask, token_types = bert_inputs()
    labels = torch.tensor([0, 2, 1])

    def loss(p):
        kwargs = dict(attention_mask=mask, token_type_ids=token_types, labels=labels)
        return torch.func.functional_call(model, p, (ids,), kwargs).loss

    err = grads_match(loss, params_of(model), dtype, "bert grad")
    report(f"bert grad {dtype}", max_rel=err)


# ---------------------------------------------------------------------------- ResNet-18


class BasicBlock(torch.nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(cout)
        self.conv2 = torch.nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = torch.nn.Sequential(torch.nn.Conv2d(cin, cout, 1, stride, bias=False),
                                                  torch.nn.BatchNorm2d(cout))  # fmt: skip

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + identity, inplace=True)


class ResNet18(torch.nn.Module):
    """ResNet-18's layout ([2, 2, 2, 2] basic blocks) at a width a CPU test affords."""

    def __init__(self, widths=(8, 16, 32, 64), classes=10):
        super().__init__()
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, widths[0], 7, 2, 3, bias=False),
                                        torch.nn.BatchNorm2d(widths[0]), torch.nn.ReLU(inplace=True),
                                        torch.nn.MaxPool2d(3, 2, 1))  # fmt: skip
        blocks, cin = [], widths[0]
        for i, w in enumerate(widths):
            blocks += [BasicBlock(cin, w, 1 if i == 0 else 2), BasicBlock(w, w, 1)]
            cin = w
        self.layers = torch.nn.Sequential(*blocks)
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(cin, classes)

    def forward(self, x):
        return self.fc(self.pool(self.layers(self.stem(x))).flatten(1))


def resnet(dtype=torch.float32):
    model = ResNet18().to(dtype)
    model.train()
    with torch.no_grad():  # non-trivial running statistics, so eval mode is not the identity normalisation
        for _ in range(2):
            model(torch.randn(4, 3, 32, 32, dtype=dtype))
    return model.eval()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_resnet_forward(dtype):
    model = resnet(dtype)
    x = torch.randn(2, 3, 32, 32, dtype=dtype)
    out, new_buffers = jax_forward(model, (x,), {}, dtype)
    err = assert_tree_close(out, model(x), FORWARD_TOL[dtype], "logits")
    assert_tree_close(new_buffers, dict(model.named_buffers()), 0.0, "eval buffers unchanged")
    report(f"resnet forward {dtype}", max_rel=err)


@pytest.mark.parametrize("dtype", [torch.float64], ids=str)  # float64: "exactly as torch"; float32 is in test_models
def test_resnet_train_mode_updates_batchnorm_statistics(dtype):
    model = resnet(dtype).train()
    reference = copy.deepcopy(model)
    x = torch.randn(4, 3, 32, 32, dtype=dtype)
    params, buffers, apply = torchjax.to_jax(model)
    with jax.enable_x64(True):  # num_batches_tracked is int64
        out, new_buffers = jax.jit(apply)(params, buffers, torchjax.to_jax_array(x))
    expected = reference(x)
    err = assert_tree_close(torchjax.to_torch(out), expected, FORWARD_TOL[dtype], "train logits")
    new_buffers = torchjax.to_torch(new_buffers)
    buf_err = 0.0
    for k, v in reference.named_buffers():
        assert new_buffers[k].dtype == v.dtype, k
        if k.endswith("num_batches_tracked"):
            assert int(new_buffers[k]) == int(v) == 3, k
        else:
            buf_err = max(buf_err, assert_tree_close(new_buffers[k], v, FORWARD_TOL[dtype], k))
    report(f"resnet train {dtype}", logits=err, running_stats=buf_err)


# XLA takes ~10 s on this machine to compile a ResNet's backward pass, so one of the
# four (mode, dtype) pairs runs here: train mode (batch statistics) in float64.
@pytest.mark.parametrize(("mode", "dtype"), [("train", torch.float64)], ids=str)
def test_resnet_grad(mode, dtype):
    model = resnet(dtype).train(mode == "train")
    x, target = torch.randn(4, 3, 32, 32, dtype=dtype), torch.randint(0, 10, (4,))
    buffers = {k: v.clone() for k, v in model.named_buffers()}  # train mode writes them; keep both runs equal

    def loss(p):
        state = {**p, **{k: v.clone() for k, v in buffers.items()}}
        return F.cross_entropy(torch.func.functional_call(model, state, (x,)), target)

    err = grads_match(loss, params_of(model), dtype, f"resnet grad ({mode})")
    report(f"resnet grad {mode} {dtype}", max_rel=err)


# ---------------------------------------------------------------------------- LSTM / GRU


class SequenceModel(torch.nn.Module):
    def __init__(self, cell: str):
        super().__init__()
        rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
        self.embed = torch.nn.Embedding(50, 8)
        # LSTM: two stacked layers; GRU: one bidirectional layer (small, so the file stays fast).
        self.rnn = rnn(8, 16, num_layers=2 if cell == "lstm" else 1, batch_first=True, bidirectional=cell == "gru")
        self.head = torch.nn.Linear(16 * (2 if cell == "gru" else 1), 4)

    def forward(self, tokens):
        out, _ = self.rnn(self.embed(tokens))
        return self.head(out)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_rnn_forward(cell, dtype):
    model = SequenceModel(cell).to(dtype).eval()
    tokens = torch.randint(0, 50, (3, 5))
    out, _ = jax_forward(model, (tokens,), {}, dtype)
    err = assert_tree_close(out, model(tokens), FORWARD_TOL[dtype], cell)
    report(f"{cell} forward {dtype}", max_rel=err)


# float32 LSTM inference goes through mkldnn_rnn_layer (a lax.scan rule); float64 and the
# GRU through torch's unrolled C++ decomposition, whose backward is slower to compile.
@pytest.mark.parametrize(
    ("cell", "dtype"), [("lstm", torch.float32), ("lstm", torch.float64), ("gru", torch.float64)], ids=str
)
def test_rnn_grad(cell, dtype):
    model = SequenceModel(cell).to(dtype).eval()
    tokens, target = torch.randint(0, 50, (3, 5)), torch.randint(0, 4, (3, 5))

    def loss(p):
        logits = torch.func.functional_call(model, p, (tokens,))
        return F.cross_entropy(logits.reshape(-1, 4), target.reshape(-1))

    err = grads_match(loss, params_of(model), dtype, f"{cell} grad")
    report(f"{cell} grad {dtype}", max_rel=err)


# ---------------------------------------------------------------------------- Dropout


def dropout_model():
    return torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Dropout(0.5),
                               torch.nn.Linear(32, 8), torch.nn.Dropout(0.25))  # fmt: skip


def test_dropout_train_mode_is_seeded_by_torch():
    model = dropout_model().train()
    x = torch.randn(64, 16)
    fast = torchjax.jit(model)

    def run(seed):
        torch.manual_seed(seed)
        return fast(x)

    a, b, c = run(1), run(1), run(2)
    assert a.shape == (64, 8) and a.dtype == torch.float32
    torch.testing.assert_close(a, b, rtol=0, atol=0)  # torch.manual_seed reproduces the run
    assert not torch.equal(a, c)
    with torch.no_grad():
        deterministic = model.eval()(x)
    assert not torch.equal(a, deterministic)


def test_dropout_mask_scales_kept_values():
    x = torch.randn(200, 50) + 3.0
    model = torch.nn.Dropout(0.3).train()
    params, buffers, apply = torchjax.to_jax(model)
    out, _ = jax.jit(apply)(params, buffers, torchjax.to_jax_array(x), rng_key=jax.random.key(0))
    out = torchjax.to_torch(out)
    kept = out != 0
    torch.testing.assert_close(out[kept], x[kept] / 0.7)
    assert abs(kept.float().mean().item() - 0.7) < 0.02
    again, _ = jax.jit(apply)(params, buffers, torchjax.to_jax_array(x), rng_key=jax.random.key(0))
    assert torch.equal(torchjax.to_torch(again), out)


def test_dropout_grad_is_seeded_by_torch():
    model = dropout_model().train()
    x = torch.randn(8, 16)
    params = params_of(model)

    def loss(p):
        return torch.func.functional_call(model, p, (x,)).square().mean()

    def grads(seed):
        torch.manual_seed(seed)
        with no_torch_func_fallback():
            return torchjax.func.grad(loss)(params)

    a, b = grads(3), grads(3)
    for k in params:
        assert a[k].shape == params[k].shape and a[k].dtype == params[k].dtype
        assert torch.equal(a[k], b[k]), k


# ---------------------------------------------------------------------------- attention


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_scaled_dot_product_attention_masks(dtype):
    q, k, v = (torch.randn(2, 4, 9, 8, dtype=dtype) for _ in range(3))
    keep = torch.rand(2, 1, 9, 9) > 0.3
    keep[..., 0] = True  # no fully masked row
    additive = torch.randn(2, 4, 9, 9, dtype=dtype)

    def attend(q, k, v, keep, additive):
        causal = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        boolean = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
        added = F.scaled_dot_product_attention(q, k, v, attn_mask=additive, scale=0.5)
        return causal, boolean, added

    expected = attend(q, k, v, keep, additive)
    with x64_for(dtype):
        actual = jax.jit(torchjax.to_jax(attend))(*torchjax.to_jax_array((q, k, v, keep, additive)))
    for a, e in zip(torchjax.to_torch(actual), expected, strict=True):
        assert_tree_close(a, e, FORWARD_TOL[dtype])
