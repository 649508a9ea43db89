"""Whole models converted, jitted and matched to torch eager, in eval and train mode."""

from __future__ import annotations

import copy

import jax
import pytest
import torch
import torch.nn.functional as F

import torchjax

TOL = {torch.float32: dict(rtol=1e-4, atol=1e-5), torch.float64: dict(rtol=1e-10, atol=1e-10)}


class CNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.conv2 = torch.nn.Conv2d(8, 16, 3, stride=2)
        self.pool = torch.nn.AdaptiveAvgPool2d(2)
        self.fc = torch.nn.Linear(16 * 4, 5)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(x, 2)
        x = F.gelu(self.conv2(x))
        return self.fc(self.pool(x).flatten(1))


def mlp():
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16), torch.nn.Tanh(),
                               torch.nn.Linear(16, 3), torch.nn.LogSoftmax(-1))  # fmt: skip


def encoder():
    return torch.nn.TransformerEncoderLayer(d_model=16, nhead=4, dim_feedforward=32, dropout=0.0, batch_first=True)


MODELS = {
    "mlp": (mlp, lambda: torch.randn(4, 6)),
    "cnn": (CNN, lambda: torch.randn(2, 3, 12, 12)),
    "encoder": (encoder, lambda: torch.randn(2, 5, 16)),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("name", sorted(MODELS))
def test_eval_matches_torch(name, dtype):
    make, data = MODELS[name]
    model = make().to(dtype).eval()
    x = data().to(dtype)
    params, buffers, apply = torchjax.to_jax(model)
    with jax.enable_x64(dtype == torch.float64):  # a user's float64 JAX program runs with x64 on
        out, _ = jax.jit(apply)(params, buffers, torchjax.to_jax_array(x))
    result = torchjax.to_torch(out)
    assert result.dtype == dtype
    torch.testing.assert_close(result, model(x).detach(), **TOL[dtype])
    torch.testing.assert_close(torchjax.jit(model)(x), model(x).detach(), **TOL[dtype])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_train_mode_matches_torch_and_updates_buffers(name):
    make, data = MODELS[name]
    model = make().train()
    reference = copy.deepcopy(model)
    x = data()
    params, buffers, apply = torchjax.to_jax(model)
    with jax.enable_x64(True):  # num_batches_tracked is int64
        out, new_buffers = jax.jit(apply)(params, buffers, torchjax.to_jax_array(x))
    expected = reference(x)
    torch.testing.assert_close(torchjax.to_torch(out), expected.detach(), **TOL[torch.float32])
    for k, v in reference.named_buffers():
        torch.testing.assert_close(torchjax.to_torch(new_buffers[k]), v, **TOL[torch.float32])


def test_jit_train_mode_updates_module_buffers_in_place():
    model = CNN().train()
    reference = copy.deepcopy(model)
    fast = torchjax.jit(model)
    for _ in range(3):
        x = torch.randn(2, 3, 12, 12)
        torch.testing.assert_close(fast(x), reference(x).detach(), **TOL[torch.float32])
    torch.testing.assert_close(model.bn1.running_mean, reference.bn1.running_mean)
    torch.testing.assert_close(model.bn1.running_var, reference.bn1.running_var)
    assert int(model.bn1.num_batches_tracked) == 3


def test_grad_through_converted_model_matches_torch():
    model = CNN().eval()
    x, t = torch.randn(2, 3, 12, 12), torch.randint(0, 5, (2,))
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss(p):
        return F.cross_entropy(torch.func.functional_call(model, p, (x,)), t)

    expected = torch.func.grad(loss)(params)
    actual = torchjax.func.grad(loss)(params)
    for k in expected:
        torch.testing.assert_close(actual[k], expected[k], rtol=1e-4, atol=1e-5)
