"""A short check of torchjax on a CUDA machine: ``PYTHONPATH=. python tools/gpu_check.py``.

Crosses CUDA tensors both ways (zero-copy: same device pointer), runs a converted
model and torchjax.func transforms on the GPU, and compares with torch on the GPU.
"""

from __future__ import annotations

import time

import jax
import torch

import torchjax
import torchjax.func as jf


def main() -> None:
    print("jax devices:", jax.devices(), "torch cuda:", torch.cuda.is_available())
    dev = "cuda"
    t = torch.randn(1024, 256, device=dev)
    a = torchjax.to_jax_array(t)
    print("torch->jax on", a.devices(), "same pointer:", a.unsafe_buffer_pointer() == t.data_ptr())
    back = torchjax.to_torch(a)
    print("jax->torch on", back.device, "same pointer:", back.data_ptr() == t.data_ptr())
    for dtype in (torch.float64, torch.int64, torch.bfloat16, torch.bool):
        x = (torch.randn(8, device=dev) * 100).to(dtype)
        y = torchjax.to_torch(torchjax.to_jax_array(x))
        assert y.dtype == dtype and torch.equal(y, x), dtype
    print("dtypes round-trip on GPU: ok")

    model = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.GELU(), torch.nn.Linear(512, 10)).to(dev)
    fast = torchjax.jit(model)
    out = fast(t)
    print("jit(model) on", out.device, "max diff", float((out - model(t)).abs().max()))
    params = {k: v.detach() for k, v in model.named_parameters()}
    target = torch.randint(0, 10, (1024,), device=dev)

    def loss(p, x, y):
        return torch.nn.functional.cross_entropy(jf.functional_call(model, p, (x.unsqueeze(0),)), y.unsqueeze(0))

    ps_tj = jf.vmap(jf.grad(loss), in_dims=(None, 0, 0))
    ps_tf = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0, 0))
    g1, g2 = ps_tj(params, t, target), ps_tf(params, t, target)
    print("per-sample grads on", g1["0.weight"].device, "max diff", max(float((g1[k] - g2[k]).abs().max()) for k in g1))
    for name, fn in (("torch.func", ps_tf), ("torchjax.func", ps_tj)):
        fn(params, t, target)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(20):
            fn(params, t, target)
        torch.cuda.synchronize()
        print(f"{name}: {(time.perf_counter() - t0) / 20 * 1e3:.2f} ms per call")


if __name__ == "__main__":
    main()
