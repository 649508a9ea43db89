"""``compare``: where torch's and torchjax's numerics part ways, by module or by op."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch

from .function_transforms import FUNCTION_TRANSFORMS, transform_entries
from .metrics import Entry
from .modules import forward_entries, forward_torch, grad_entries, isolated_entries
from .ops import op_entries, record_ops
from .report import Report
from .target import Target

TRANSFORMS = ("forward", "grad", *FUNCTION_TRANSFORMS)


@contextlib.contextmanager
def _buffers_kept(target: Target) -> Iterator[None]:
    """Each run starts from the buffers the model had: a train-mode BatchNorm updates its
    running statistics on every run, and comparing must not change the model."""
    saved = [(b, b.detach().clone()) for b in target.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for b, v in saved:
                b.copy_(v)


def compare(
    fn_or_module: Callable | torch.nn.Module,
    *args: Any,
    transforms: str | tuple[str, ...] = ("forward",),
    granularity: str = "module",
    reference: str | None = "float64",
    rtol: float | None = None,
    atol: float | None = None,
    isolate: bool = False,
    progress: bool = False,
    **kwargs: Any,
) -> Report:
    """Run ``fn_or_module(*args, **kwargs)`` in torch and in torchjax; report where they differ.

    Args:
        fn_or_module: an ``nn.Module``, or a function (the modules its closure holds are
            watched too).
        *args, **kwargs: the inputs, the same for both sides.
        transforms: any of ``"forward"``, ``"grad"`` (with respect to the parameters
            and the floating inputs, as ``sum(out * cotangent)`` for a fixed random
            cotangent), ``"vjp"``, ``"jvp"``, ``"jacrev"``, ``"jacfwd"``, ``"hessian"``
            and ``"vmap(grad)"`` (per-sample gradients). The last six are compared on
            their final results.
        granularity: ``"module"``: every submodule's output (and for ``grad``, every
            module's parameter and input gradients); torch runs eagerly with forward
            hooks, torchjax runs one compiled program returning what the same hooks
            saw while it traced. ``"op"``: every ATen op torch ran, against torchjax's
            rule on the same inputs (and the op's vector-Jacobian product for
            ``grad``).
        reference: ``"float64"`` also runs torch in float64; an entry fails only when
            torchjax's error against it exceeds torch's own error by a factor (see
            ``metrics.FACTOR``), so an error both share (summation order) is not
            torchjax's fault. ``None`` compares torch and torchjax directly with
            ``rtol``/``atol``.
        rtol, atol: without a reference, the tolerances (default: those of
            ``torch.testing.assert_close``); with one, the error torchjax may always
            have, ``atol + rtol * max|reference|``.
        isolate: at module granularity, compile each module alone and feed it the
            inputs torch gave it, so errors do not accumulate from layer to layer.
        progress: a progress bar over the ops at op granularity (needs ``tqdm``:
            ``pip install torchjax[compare]``; without it, nothing is shown).

    Returns:
        A :class:`Report`: ``first_divergence``, ``table()``, ``to_json(path)``,
        ``assert_ok()``.

    Example:
        >>> import torch, torchjax.testing
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.Linear(8, 2))
        >>> report = torchjax.testing.compare(model, torch.randn(3, 4), transforms=("forward", "grad"))
        >>> report.ok, report.first_divergence
        (True, None)
        >>> [e.name for e in report.entries if e.transform == "forward"]
        ['0', '1', '2', '<root>']
    """
    if isinstance(transforms, str):
        transforms = (transforms,)
    transforms = tuple(transforms)
    for t in transforms:
        if t not in TRANSFORMS:
            raise ValueError(f"compare(transforms={transforms!r}): unknown transform {t!r}; choose from {TRANSFORMS}")
    if granularity not in ("module", "op"):
        raise ValueError(f"compare(granularity={granularity!r}): expected 'module' or 'op'")
    if reference not in ("float64", None):
        raise ValueError(f"compare(reference={reference!r}): expected 'float64' or None")
    target = Target(fn_or_module)
    ref = reference == "float64"
    entries: list[Entry] = []
    with _buffers_kept(target):
        out, rec = forward_torch(target, args, kwargs, inputs=isolate and granularity == "module")
    calls = None
    for t in transforms:
        with _buffers_kept(target):
            if t in ("forward", "grad") and granularity == "op":
                if calls is None:
                    calls = record_ops(target, args, kwargs)
                entries += op_entries(calls, (t,), reference=ref, rtol=rtol, atol=atol, progress=progress)
            elif t == "forward" and isolate:
                entries += isolated_entries(target, rec, reference=ref, rtol=rtol, atol=atol)
            elif t == "forward":
                entries += forward_entries(target, args, kwargs, rec, out, reference=ref, rtol=rtol, atol=atol)
            elif t == "grad":
                entries += grad_entries(target, args, kwargs, rec.calls, out, reference=ref, rtol=rtol, atol=atol)
            else:
                entries += transform_entries(t, target, args, kwargs, out, reference=ref, rtol=rtol, atol=atol)
    return Report(entries, reference=reference, granularity=granularity, transforms=transforms)


__all__ = ["TRANSFORMS", "Entry", "Report", "compare"]
