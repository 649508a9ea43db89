"""The torchjax demo: ``python -m torchjax.demo``.

Converts a small CNN (with BatchNorm) and a transformer encoder block to JAX, runs
them under ``jax.jit`` and compares with torch eager; then computes per-sample
gradients of the CNN with ``torchjax.func`` beside ``torch.func`` and times both.
"""

from __future__ import annotations

import statistics
import time

import jax
import torch
import torch.nn.functional as F

import torchjax
import torchjax.func


class SmallCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 16, 3)
        self.bn = torch.nn.BatchNorm2d(16)
        self.conv2 = torch.nn.Conv2d(16, 32, 3)
        self.fc = torch.nn.Linear(32 * 5 * 5, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


def _max_diff(a, b) -> float:
    return float((torch.as_tensor(a) - b.detach()).abs().max())


def _time(fn, repeat: int = 7) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def convert_and_compare() -> None:
    torch.manual_seed(0)
    cnn = SmallCNN().eval()
    x = torch.randn(8, 1, 28, 28)
    params, buffers, apply = torchjax.to_jax(cnn)
    out, _ = jax.jit(apply)(params, buffers, torchjax.to_jax_array(x))
    print(f"CNN (eval) under jax.jit          max|torchjax - torch| = {_max_diff(torchjax.to_torch(out), cnn(x)):.2e}")

    cnn.train()
    ref = SmallCNN()
    ref.load_state_dict(cnn.state_dict())
    ref.train()
    # to_jax again: the module's mode is Python state that JAX bakes into its trace
    params, buffers, apply = torchjax.to_jax(cnn)
    out, new_buffers = jax.jit(apply)(params, buffers, torchjax.to_jax_array(x))
    expected = ref(x)
    print(
        f"CNN (train) under jax.jit         max|torchjax - torch| = {_max_diff(torchjax.to_torch(out), expected):.2e}"
    )
    print(f"  BatchNorm running_mean update   max|torchjax - torch| = "
          f"{_max_diff(torchjax.to_torch(new_buffers['bn.running_mean']), ref.bn.running_mean):.2e}")  # fmt: skip

    block = torch.nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64, batch_first=True).eval()
    seq = torch.randn(4, 10, 32)
    params, buffers, apply = torchjax.to_jax(block)
    out, _ = jax.jit(apply)(params, buffers, torchjax.to_jax_array(seq))
    print(
        f"Transformer block under jax.jit   max|torchjax - torch| = {_max_diff(torchjax.to_torch(out), block(seq)):.2e}"
    )


def per_sample_gradients() -> None:
    torch.manual_seed(0)
    model = SmallCNN().eval()
    params = {k: v.detach() for k, v in model.named_parameters()}
    data, targets = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))

    def make(api):
        def loss(p, x, t):
            out = api.functional_call(model, p, (x.unsqueeze(0),))
            return F.cross_entropy(out, t.unsqueeze(0))

        return api.vmap(api.grad(loss), in_dims=(None, 0, 0))

    ref_fn, tj_fn = make(torch.func), make(torchjax.func)
    t0 = time.perf_counter()
    got = tj_fn(params, data, targets)
    first = (time.perf_counter() - t0) * 1e3
    expected = ref_fn(params, data, targets)
    diff = max(_max_diff(got[k], expected[k]) for k in expected)
    t_ref = _time(lambda: ref_fn(params, data, targets))
    t_tj = _time(lambda: tj_fn(params, data, targets))
    print("\nPer-sample gradients of the CNN, vmap(grad(loss)), batch 32:")
    print(f"  max|torchjax.func - torch.func| over all parameters = {diff:.2e}")
    print(f"  torch.func    median {t_ref:8.2f} ms")
    print(f"  torchjax.func median {t_tj:8.2f} ms   (first call with capture + XLA compile: {first:.0f} ms)")


def main() -> None:
    print(f"torch {torch.__version__}, jax {jax.__version__}, devices {jax.devices()}")
    # BatchNorm's num_batches_tracked is int64: keep torch's dtypes in our own JAX code too
    with jax.enable_x64(True):
        convert_and_compare()
    per_sample_gradients()


if __name__ == "__main__":
    main()
