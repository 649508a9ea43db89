"""torchjax outputs join torch autograd: ``torchjax.jit`` and top-level ``torchjax.func``
outputs have a ``grad_fn`` whose backward is the compiled pullback of the program,
compared here with torch eager autograd and ``torch.func``."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

import torchjax
from torchjax._src.transforms import base

transformers = pytest.importorskip("transformers")


def _entry(fn):
    """The compiled entry of a ``torchjax.jit`` function (it has one signature)."""
    (entry,) = fn.compiled._cache.values()
    return entry


class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(6, 16)
        self.fc2 = torch.nn.Linear(16, 3)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x)))


class CNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4 * 4 * 4, 5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2)
        return self.fc(x.flatten(1))


def _grads(module):
    return {k: p.grad for k, p in module.named_parameters()}


@pytest.mark.parametrize("make, shape", [(MLP, (5, 6)), (CNN, (3, 2, 8, 8))], ids=["mlp", "cnn"])
def test_jit_module_backward_fills_grads_as_eager(make, shape):
    model = make().double()
    reference = copy.deepcopy(model)
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    out = torchjax.jit(model)(x)
    target = torch.randn(out.shape, dtype=torch.float64)
    assert out.requires_grad and out.grad_fn is not None
    F.mse_loss(out, target).backward()
    F.mse_loss(reference(x_ref), target).backward()

    for k, expected in _grads(reference).items():
        torch.testing.assert_close(_grads(model)[k], expected, rtol=1e-10, atol=1e-12, msg=k)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-10, atol=1e-12)
    for k, expected in reference.named_buffers():  # running statistics written once, as in eager
        torch.testing.assert_close(dict(model.named_buffers())[k], expected, rtol=1e-12, atol=1e-12, msg=k)


def test_gradcheck_and_gradgradcheck_float64():
    w = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)  # a captured tensor

    def f(x, y, k):
        h = torch.tanh(x @ w) * y.exp()
        return h.sum(1) + h[:, k], (h * h).mean()

    fast = torchjax.jit(f)
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    y = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, c: fast(a, b, 1), (x, y, w))
    assert torch.autograd.gradgradcheck(lambda a, b, c: fast(a, b, 1), (x, y, w))
    assert torch.autograd.gradcheck(lambda a: fast(a.cos(), y, 0)[1] * a.sum(), (x,))  # between torch ops


def test_gradcheck_complex():
    fast = torchjax.jit(lambda z, c: (torch.sin(z) * c).sum(-1) * z[..., 0].conj())
    z = torch.randn(3, 4, dtype=torch.complex128, requires_grad=True)
    c = torch.randn(4, dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(fast, (z, c))


def test_create_graph_double_backward():
    x = torch.randn(7, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()

    def f(x):
        return (x.sin() * x**2).sum()

    (g,) = torch.autograd.grad(torchjax.jit(f)(x), x, create_graph=True)
    (g_ref,) = torch.autograd.grad(f(x_ref), x_ref, create_graph=True)
    assert g.grad_fn is not None
    torch.testing.assert_close(g, g_ref)
    (g * g.cos()).sum().backward()
    (g_ref * g_ref.cos()).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad)


def test_backward_uses_the_forwards_random_draws():
    x = torch.randn(64, dtype=torch.float64, requires_grad=True)
    fast = torchjax.jit(lambda x: F.dropout(x.sin(), p=0.5, training=True))
    out = fast(x)
    assert type(out.grad_fn).__name__ == "JaxProgramBackward"
    kept = (out != 0).double()
    assert 0 < kept.sum() < 64
    (g,) = torch.autograd.grad(out.sum(), x, create_graph=True)  # the recomputed forward too
    torch.testing.assert_close(g, 2 * kept * x.detach().cos())
    (gg,) = torch.autograd.grad(g.sum(), x)
    torch.testing.assert_close(gg, -2 * kept * x.detach().sin())


def test_no_grad_fn_under_no_grad_inference_mode_or_when_nothing_requires_grad():
    model = MLP()
    fast = torchjax.jit(model)
    x = torch.randn(5, 6, requires_grad=True)
    with torch.no_grad():
        out = fast(x)
    with torch.inference_mode():
        out_inference = fast(x)
    assert not out.requires_grad and out.grad_fn is None
    assert not out_inference.requires_grad and out_inference.grad_fn is None
    assert _entry(fast).program.autograd is None  # no differentiable program built, no residuals kept

    model.requires_grad_(False)
    out = fast(x.detach())
    assert not out.requires_grad and out.grad_fn is None
    assert _entry(fast).program.autograd is None
    torch.testing.assert_close(out, model(x.detach()))


def test_traced_under_no_grad_then_differentiated():
    model = MLP().double()
    fast = torchjax.jit(model)
    x = torch.randn(5, 6, dtype=torch.float64)
    with torch.no_grad():
        fast(x)  # the first trace happens with grad mode off
    fast(x).square().sum().backward()
    expected = torch.autograd.grad(model(x).square().sum(), list(model.parameters()))
    for p, e in zip(model.parameters(), expected):
        torch.testing.assert_close(p.grad, e)


def test_expanded_and_non_contiguous_cotangents():
    x = torch.randn(4, 3, requires_grad=True)
    fast = torchjax.jit(lambda x: x.exp() * 2)
    out = fast(x)
    out.sum().backward()  # torch hands over ones expanded to (4, 3): stride 0
    torch.testing.assert_close(x.grad, 2 * x.detach().exp())
    x.grad = None
    ct = torch.randn(3, 4).t()  # a transposed cotangent
    assert not ct.is_contiguous()
    fast(x).backward(ct)
    torch.testing.assert_close(x.grad, 2 * x.detach().exp() * ct)
    x.grad = None
    fast(x).backward(torch.tensor(3.0).expand(4, 3))
    torch.testing.assert_close(x.grad, 6 * x.detach().exp())


def test_integer_and_constant_outputs_are_not_differentiable():
    x = torch.randn(4, 5, requires_grad=True)

    def f(x):
        with torch.no_grad():
            unrecorded = x * 3
        return x.argmax(-1), x.detach() * 2, torch.ones(3), unrecorded, (x * x).sum(-1)

    *others, y = outs = torchjax.jit(f)(x)
    for eager, ours in zip(f(x), outs):
        assert ours.requires_grad == eager.requires_grad
        assert ours.dtype == eager.dtype
    assert others[0].dtype == torch.int64 and y.grad_fn is not None
    y.sum().backward()
    torch.testing.assert_close(x.grad, 2 * x.detach())


def test_unused_output_gets_no_cotangent():
    x = torch.randn(6, dtype=torch.float64, requires_grad=True)
    a, b = torchjax.jit(lambda x: (x.sin(), x.cos()))(x)
    b.sum().backward()  # a's cotangent is None: a zero inside the pullback
    torch.testing.assert_close(x.grad, -x.detach().sin())


def test_saved_tensors_follow_torch_rules():
    w = torch.randn(3, 3, requires_grad=True)
    fast = torchjax.jit(lambda x: torch.tanh(x @ w))
    x = torch.randn(2, 3)
    out = fast(x)
    out.sum().backward(retain_graph=True)
    first = w.grad.clone()
    out.sum().backward()
    torch.testing.assert_close(w.grad, 2 * first)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        out.sum().backward()

    out = fast(x)
    with torch.no_grad():
        x.add_(1.0)  # a residual of the backward (x @ w needs x for w's gradient)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


def test_weights_are_residuals_as_they_are_not_copies():
    model = MLP()
    fast = torchjax.jit(model)
    fast(torch.randn(5, 6)).sum().backward()
    (forward,) = _entry(fast).program.autograd._forwards.values()
    kept = forward.executable.out_info[3]  # the residuals the program returns besides its outputs
    assert not {tuple(k.shape) for k in kept} & {(6, 16), (16, 3)}  # no transposed weight copies
    out = fast(torch.randn(5, 6))
    with torch.no_grad():
        model.fc2.weight.mul_(2)  # the backward reads the weight itself: torch's check applies
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


def test_outputs_of_one_call_feed_the_next():
    model = MLP().double()
    reference = copy.deepcopy(model)
    fast = torchjax.jit(model.fc1)
    x = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    (model.fc2(torch.tanh(fast(x))) * fast(x).sum()).sum().backward()
    (reference.fc2(torch.tanh(reference.fc1(x_ref))) * reference.fc1(x_ref).sum()).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad)
    for k, expected in _grads(reference).items():
        torch.testing.assert_close(_grads(model)[k], expected, msg=k)


def _train(model, batches, loss_fn, steps_through):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for batch in batches:
        optimizer.zero_grad()
        loss = loss_fn(steps_through, *batch)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_training_cnn_with_batchnorm_matches_eager():
    model = CNN().double()
    reference = copy.deepcopy(model)
    batches = [(torch.randn(6, 2, 8, 8, dtype=torch.float64), torch.randint(0, 5, (6,))) for _ in range(5)]

    def loss_fn(run, x, y):
        return F.cross_entropy(run(x), y)

    ours = _train(model, batches, loss_fn, torchjax.jit(model))
    expected = _train(reference, batches, loss_fn, reference)
    torch.testing.assert_close(torch.tensor(ours), torch.tensor(expected), rtol=1e-9, atol=1e-12)
    for (k, p), q in zip(model.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-8, atol=1e-10, msg=k)
    assert not torch.equal(model.conv.weight, CNN().double().conv.weight)
    for k, b in reference.named_buffers():
        torch.testing.assert_close(dict(model.named_buffers())[k], b, msg=k)
    assert int(model.bn.num_batches_tracked) == 5  # one write-back per forward


def test_training_gpt2_matches_eager():
    cfg = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100, n_positions=32,
                                  resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0,
                                  eos_token_id=0)  # fmt: skip
    model = transformers.GPT2LMHeadModel(cfg).double().train()
    reference = copy.deepcopy(model)
    batches = [(torch.randint(0, 100, (2, 12)),)] * 5  # one batch, learnt: the loss must fall

    def loss_fn(run, ids):  # HF's own loss (labels=) runs in float32: computed here in float64
        logits = run(ids, use_cache=False).logits
        return F.cross_entropy(logits[:, :-1].reshape(-1, cfg.vocab_size), ids[:, 1:].reshape(-1))

    ours = _train(model, batches, loss_fn, torchjax.jit(model))
    expected = _train(reference, batches, loss_fn, reference)
    torch.testing.assert_close(torch.tensor(ours), torch.tensor(expected), rtol=1e-9, atol=1e-12)
    assert ours[-1] < ours[0]
    assert model.lm_head.weight is model.transformer.wte.weight  # tied weights stay tied
    for (k, p), q in zip(model.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-7, atol=1e-9, msg=k)


def test_func_vmap_and_grad_outputs_are_differentiable_as_torch_func():
    w = torch.randn(3, dtype=torch.float64, requires_grad=True)

    def f(r):
        return (r.sin() * w).sum()

    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    cases = [
        (torchjax.func.vmap(f), torch.func.vmap(f), x),
        (torchjax.func.grad(f), torch.func.grad(f), x[0].detach().requires_grad_()),
        (torchjax.func.jacrev(torchjax.func.grad(f)), torch.func.jacrev(torch.func.grad(f)), x[1].detach()),
    ]
    for ours_fn, theirs_fn, arg in cases:
        ours, theirs = ours_fn(arg), theirs_fn(arg)
        assert ours.grad_fn is not None and theirs.grad_fn is not None
        wrt = (arg, w) if arg.requires_grad else (w,)
        got = torch.autograd.grad((ours * ours).sum(), wrt)
        expected = torch.autograd.grad((theirs * theirs).sum(), wrt)
        for a, b in zip(got, expected):
            torch.testing.assert_close(a, b)

    with torch.no_grad():
        assert torchjax.func.vmap(f)(x).grad_fn is None
    assert torchjax.func.vmap(torch.sin)(x.detach()).grad_fn is None
    base.clear_cache()
