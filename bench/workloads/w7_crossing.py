"""W7: crossing torch → JAX → torch. The cost must not grow with the tensor's size.

There is no torch.func contender: the reference is the tensor itself, and the ``jax``
column is the raw DLPack round trip (``jax.dlpack.from_dlpack`` + ``torch.from_dlpack``).

"fresh" cases cross a new tensor object (a view of the same buffer) on every call, so
torchjax's crossing cache cannot answer and the crossing itself is measured; the
"again" case crosses the same unchanged parameters every call, as a training loop
does, which the cache answers without crossing them again.
"""

from __future__ import annotations

from typing import Any

import jax
import torch

import torchjax
from bench.harness import JAX, TORCHJAX, Case
from bench.workloads.w5_gpt2 import gpt2


def _zero_copy(tree: Any) -> Any:
    return lambda outputs: (
        "zero-copy: "
        + ", ".join(f"{name} {'yes' if _same_buffers(out, tree) else 'NO'}" for name, out in outputs.items())
    )


def _same_buffers(out: Any, tree: Any) -> bool:
    if isinstance(tree, dict):
        return all(_same_buffers(out[k], v) for k, v in tree.items())
    return out.data_ptr() == tree.data_ptr()


def _raw_dlpack(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _raw_dlpack(v) for k, v in tree.items()}
    return torch.from_dlpack(jax.dlpack.from_dlpack(tree))


def _fresh(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _fresh(v) for k, v in tree.items()}
    return tree.view(tree.shape)  # a new tensor object over the same buffer


def _case(id_: str, title: str, tree: Any, fresh: bool) -> Case:
    prepare = _fresh if fresh else (lambda t: t)
    return Case(
        id_,
        title,
        {
            TORCHJAX: lambda: torchjax.to_torch(torchjax.to_jax_array(prepare(tree))),
            JAX: lambda: _raw_dlpack(prepare(tree)),
        },
        in_geomean=False,
        expected=lambda: tree,
        note=_zero_copy(tree),
    )


def cases(quick: bool) -> list[Case]:
    big = 1_000 if quick else 100_000_000  # float32: 4 kB or 400 MB
    params = {k: v.detach() for k, v in gpt2(n_positions=64).named_parameters()}
    return [
        _case("W7a", "crossing, 4 B tensor, fresh", torch.ones(1), fresh=True),
        _case("W7b", f"crossing, {big * 4 / 1e6:g} MB tensor, fresh", torch.ones(big), fresh=True),
        _case("W7c", f"crossing, GPT-2's {len(params)} parameter tensors, fresh", params, fresh=True),
        _case("W7d", f"crossing, GPT-2's {len(params)} parameter tensors, again", params, fresh=False),
    ]
