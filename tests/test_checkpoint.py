"""``torch.utils.checkpoint`` in captured code: gradients as eager autograd's, activations rematerialised.

torch.func refuses checkpoint, so the references are eager ``loss.backward()`` (for
gradients) and the same model without checkpoint (for memory).
"""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import pytest
import torch
import torch.nn.functional as F
import transformers
from torch.utils.checkpoint import checkpoint, checkpoint_sequential

import torchjax
from torchjax._src import _compat
from torchjax._src import checkpoint as ckpt

MODES = [True, False]
MODE_IDS = ["reentrant", "non_reentrant"]
# whichever checkpoint variant runs, a region that cannot be rematerialised is a failure here
pytestmark = pytest.mark.filterwarnings("error:torchjax. a checkpoint")


class MLP(torch.nn.Module):
    """Eight Linear(64, 64) + tanh layers, checkpointed in ``segments`` (None: no checkpoint)."""

    def __init__(self, use_reentrant: bool | None = None, segments: int = 2):
        super().__init__()
        self.layers = torch.nn.Sequential(*[m for _ in range(8) for m in (torch.nn.Linear(64, 64), torch.nn.Tanh())])
        self.use_reentrant = use_reentrant
        self.segments = segments

    def forward(self, x):
        if self.use_reentrant is None:
            return self.layers(x)
        return checkpoint_sequential(self.layers, self.segments, x, use_reentrant=self.use_reentrant)


class Regions:
    """Counts the checkpointed regions torchjax rematerialises."""

    def __init__(self, monkeypatch):
        self.count = 0
        original = ckpt._Region.__init__

        def counting(region, *args, **kwargs):
            self.count += 1
            original(region, *args, **kwargs)

        monkeypatch.setattr(ckpt._Region, "__init__", counting)


def eager_grads(model, loss_fn, *inputs) -> dict[str, torch.Tensor]:
    model = copy.deepcopy(model)
    loss_fn(model, *inputs).backward()
    return {k: p.grad for k, p in model.named_parameters()}


def assert_grads_close(actual: dict, expected: dict, **tol) -> None:
    """``actual``: torch tensors, or the jax.Arrays of a jax.grad."""
    assert actual.keys() == expected.keys()
    for k in expected:
        a = actual[k] if isinstance(actual[k], torch.Tensor) else torch.from_numpy(jax.device_get(actual[k]).copy())
        torch.testing.assert_close(a, expected[k], msg=k, **tol)


@pytest.mark.parametrize("use_reentrant", MODES, ids=MODE_IDS)
def test_mlp_grads_match_eager(use_reentrant, monkeypatch):
    regions = Regions(monkeypatch)
    model = MLP(use_reentrant).double()
    # eager reentrant checkpoint gives parameters a gradient only if an input requires grad
    x = torch.randn(16, 64, dtype=torch.float64, requires_grad=True)
    expected = eager_grads(model, lambda m, x: (m(x) ** 2).sum(), x)
    params = {k: p.detach() for k, p in model.named_parameters()}

    def loss(p, x):
        return (torchjax.func.functional_call(model, p, (x,)) ** 2).sum()

    grads = torchjax.func.grad(loss)(params, x.detach())
    assert regions.count >= 1  # the segment before the last one is checkpointed
    assert_grads_close(grads, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("use_reentrant", MODES, ids=MODE_IDS)
def test_mlp_to_jax_jax_grad_matches_eager(use_reentrant):
    model = MLP(use_reentrant).double()
    x = torch.randn(16, 64, dtype=torch.float64, requires_grad=True)
    expected = eager_grads(model, lambda m, x: (m(x) ** 2).sum(), x)
    params, buffers, apply = torchjax.to_jax(model)
    with jax.enable_x64(True):
        grads = jax.jit(jax.grad(lambda p, x: (apply(p, buffers, x)[0] ** 2).sum()))(params, x.detach().numpy())
    assert_grads_close(grads, expected, rtol=1e-10, atol=1e-12)


def temp_bytes(model, x) -> int:
    params, buffers, apply = torchjax.to_jax(model)
    grad = jax.jit(jax.grad(lambda p, x: (apply(p, buffers, x)[0] ** 2).sum()))
    return grad.lower(params, x).compile().memory_analysis().temp_size_in_bytes


@pytest.mark.parametrize("use_reentrant", MODES, ids=MODE_IDS)
def test_checkpoint_lowers_temp_memory(use_reentrant):
    """The gradient's compiled program keeps fewer activations (a memory figure, not a timing)."""
    x = jnp.ones((512, 64), jnp.float32)
    plain = temp_bytes(MLP(None), x)
    checkpointed = temp_bytes(MLP(use_reentrant, segments=2), x)
    print(f"\ntemp bytes: no checkpoint {plain}, checkpoint(use_reentrant={use_reentrant}) {checkpointed}")
    assert checkpointed < 0.8 * plain


def test_checkpointed_gradient_lowers_for_tpu_and_gpu():
    params, buffers, apply = torchjax.to_jax(MLP(False))
    grad = jax.jit(jax.grad(lambda p, x: (apply(p, buffers, x)[0] ** 2).sum()))
    args = (
        jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), params),
        jax.ShapeDtypeStruct((8, 64), jnp.float32),
    )
    text = jax.export.export(grad, platforms=("tpu", "cuda"))(*args).mlir_module()
    assert "f64" not in text
    # there the recomputation waits behind an optimization barrier; CPU's conditional is not lowered
    assert "optimization_barrier" in text and "rng" not in text


def tiny_gpt2(use_reentrant: bool):
    cfg = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100, n_positions=32,
                                  resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0,
                                  eos_token_id=0)  # fmt: skip
    model = transformers.GPT2LMHeadModel(cfg).train()
    enable = getattr(model, "activation_checkpointing_enable", None)
    if enable is not None:
        enable(activation_checkpointing_kwargs={"use_reentrant": use_reentrant})
    else:  # transformers < 5
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": use_reentrant})
    assert all(block.gradient_checkpointing for block in model.transformer.h)
    return model


@pytest.mark.parametrize("use_reentrant", MODES, ids=MODE_IDS)
def test_gpt2_gradient_checkpointing_grads_match_eager(use_reentrant, monkeypatch):
    regions = Regions(monkeypatch)
    model = tiny_gpt2(use_reentrant)
    ids = torch.randint(0, 100, (2, 12))
    expected = eager_grads(model, lambda m, ids: m(ids, labels=ids, use_cache=False).loss, ids)
    params = {k: p.detach() for k, p in model.named_parameters()}

    def loss(p):
        return torchjax.func.functional_call(model, p, (ids,), dict(labels=ids, use_cache=False)).loss

    grads = torchjax.func.grad(loss)(params)
    assert regions.count >= 2  # one region per block
    assert_grads_close(grads, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("use_reentrant", MODES, ids=MODE_IDS)
def test_gpt2_to_jax_jax_grad_matches_eager(use_reentrant):
    model = tiny_gpt2(use_reentrant)
    ids = torch.randint(0, 100, (2, 12))
    expected = eager_grads(model, lambda m, ids: m(ids, labels=ids, use_cache=False).loss, ids)
    params, buffers, apply = torchjax.to_jax(model)
    with jax.enable_x64(True):  # int64 token ids stay int64
        tokens = jnp.asarray(ids.numpy())
        grads = jax.jit(jax.grad(lambda p: apply(p, buffers, tokens, labels=tokens, use_cache=False)[0].loss))(params)
    assert_grads_close(grads, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("use_reentrant", MODES, ids=MODE_IDS)
def test_forward_mode_hessian_and_vmap_through_checkpoint(use_reentrant):
    lin1, lin2 = torch.nn.Linear(4, 4).double(), torch.nn.Linear(4, 4).double()

    def plain(x):
        return lin2(lin1(x).tanh()).sin().sum()

    def f(x):
        return checkpoint(lambda y: lin2(lin1(y).tanh()), x, use_reentrant=use_reentrant).sin().sum()

    x, t = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    func, ours = torch.func, torchjax.func
    torch.testing.assert_close(ours.jvp(f, (x,), (t,))[1], func.jvp(plain, (x,), (t,))[1])
    torch.testing.assert_close(ours.hessian(f)(x), func.hessian(plain)(x))
    torch.testing.assert_close(ours.vmap(ours.grad(f))(x), func.vmap(func.grad(plain))(x))


@pytest.mark.parametrize("use_reentrant", MODES, ids=MODE_IDS)
def test_recomputation_draws_the_forward_dropout_mask(use_reentrant):
    def f(x):
        return checkpoint(lambda y: F.dropout(y * 3.0, 0.5, training=True), x, use_reentrant=use_reentrant)

    x = torch.ones(64, dtype=torch.float64)
    out, vjp_fn = torchjax.func.vjp(f, x)
    (grad,) = vjp_fn(torch.ones_like(out))
    kept = out != 0
    assert 0 < int(kept.sum()) < 64
    torch.testing.assert_close(grad, kept.double() * 6.0)  # d/dx of 3x / (1 - p) where kept, 0 elsewhere


class BNBlock(torch.nn.Module):
    def __init__(self, use_reentrant: bool):
        super().__init__()
        self.lin, self.bn = torch.nn.Linear(8, 8), torch.nn.BatchNorm1d(8)
        self.use_reentrant = use_reentrant

    def forward(self, x):
        return checkpoint(lambda y: self.bn(self.lin(y)).relu(), x, use_reentrant=self.use_reentrant).sum()


@pytest.mark.filterwarnings("ignore:None of the inputs have requires_grad")  # eager torch's, for the reference
@pytest.mark.parametrize("use_reentrant", MODES, ids=MODE_IDS)
def test_in_place_buffer_writes_inside_a_region_happen_once(use_reentrant):
    model = BNBlock(use_reentrant).train()
    reference = copy.deepcopy(model)
    x = torch.randn(16, 8)
    out = torchjax.jit(model)(x)
    torch.testing.assert_close(out, reference(x))
    torch.testing.assert_close(model.bn.running_mean, reference.bn.running_mean)
    torch.testing.assert_close(model.bn.running_var, reference.bn.running_var)
    assert int(model.bn.num_batches_tracked) == 1


def test_non_reentrant_keyword_arguments_and_nested_regions():
    lin = torch.nn.Linear(4, 4).double()

    def inner(y, *, scale):
        return checkpoint(lambda z: lin(z).tanh() * scale, y, use_reentrant=True)

    def f(x):
        return checkpoint(inner, x, scale=2.0, use_reentrant=False).pow(2).sum()

    def plain(x):
        return (lin(x).tanh() * 2.0).pow(2).sum()

    x = torch.randn(3, 4, dtype=torch.float64)
    torch.testing.assert_close(torchjax.func.grad(f)(x), torch.func.grad(plain)(x))


def test_torch_checkpoint_is_left_as_it_was_outside_captures():
    lin = torch.nn.Linear(4, 4)
    x = torch.randn(3, 4, requires_grad=True)
    torchjax.func.grad(lambda x: checkpoint(lin, x, use_reentrant=False).sum())(x.detach())
    assert torch.utils.checkpoint._checkpoint_without_reentrant_generator is _compat.checkpoint_generator
    checkpoint(lin, x, use_reentrant=False).sum().backward()  # eager torch, its own generator
    torch.testing.assert_close(x.grad, lin.weight.sum(0).expand(3, 4))
