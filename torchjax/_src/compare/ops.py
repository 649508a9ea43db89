"""Op granularity: every ATen op torch ran, against torchjax's rule on the same inputs.

torch runs once under :class:`OpRecorder` (a ``TorchDispatchMode``), which keeps each
op's inputs and outputs; torchjax then runs each op alone, compiled, on those inputs
(``jit`` of a function that calls the overload, one program per overload and
signature). Each comparison is isolated by construction: an op is fed torch's inputs,
not torchjax's. For gradients, each op's vector-Jacobian product (torch's derivative
formula against JAX's derivative of torchjax's rule) is compared the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode

from ..convert import jit
from ..transforms.vjp import vjp
from .metrics import Entry, measure, missing
from .target import Recorder, is_float, leaf_names, tensor_leaves, to_double

# Ops that only relabel memory (views), read metadata, or draw random numbers: their
# comparison says nothing about numerics (a random op differs by design).
_SKIP_TAGS = (torch.Tag.nondeterministic_seeded,)


def _clone(tree: Any) -> Any:
    return pytree.tree_map(lambda x: x.detach().clone() if isinstance(x, torch.Tensor) else x, tree)


def _is_view(func) -> bool:
    rets = func._schema.returns
    return bool(rets) and rets[0].alias_info is not None and not rets[0].alias_info.is_write


class OpCall:
    """One op torch ran: the overload, a copy of its inputs and outputs, where it ran."""

    def __init__(self, name: str, func, args, kwargs, outputs: list[torch.Tensor]):
        self.name, self.func, self.args, self.kwargs, self.outputs = name, func, args, kwargs, outputs


class OpRecorder(TorchDispatchMode):
    """Records every ATen op with a tensor output, named ``<module path>::<op>``."""

    def __init__(self, modules: Recorder):
        super().__init__()
        self.modules = modules
        self.calls: list[OpCall] = []
        self._seen: dict[str, int] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.modules.busy or _is_view(func) or any(t in func.tags for t in _SKIP_TAGS) or func.namespace != "aten":
            return func(*args, **kwargs)
        inputs = _clone((args, kwargs))
        out = func(*args, **kwargs)
        outputs = [t.detach().clone() for t in tensor_leaves(out)]
        if outputs:
            base = f"{self.modules.path()}::{func._overloadpacket.__name__}"
            n = self._seen.get(base, 0) + 1
            self._seen[base] = n
            self.calls.append(OpCall(base if n == 1 else f"{base}#{n}", func, *inputs, outputs))
        return out


def record_ops(target, args, kwargs) -> list[OpCall]:
    """Run ``target`` in torch eagerly, recording its ops (no gradients taken)."""
    rec = Recorder(target)
    with torch.no_grad(), rec, OpRecorder(rec) as ops:
        target(*args, **kwargs)
    return ops.calls


def _run_op(func, args, kwargs):
    return func(*args, **kwargs)


def _op_vjp(func, args, kwargs, positions, cots, module):
    """The op's output and its vector-Jacobian product for the inputs at ``positions``
    of its flattened arguments, under ``module`` (``torch.func`` or ``torchjax.func``)."""
    leaves, spec = pytree.tree_flatten((args, kwargs))

    def f(*xs):
        new = list(leaves)
        for p, x in zip(positions, xs):
            new[p] = x
        a, k = pytree.tree_unflatten(new, spec)
        return tuple(t for t in tensor_leaves(func(*a, **k)) if is_float(t))

    out, pullback = module.vjp(f, *[leaves[p] for p in positions])
    return pullback(tuple(cots))


class _TorchFunc:
    vjp = staticmethod(torch.func.vjp)


class _TorchjaxFunc:
    vjp = staticmethod(vjp)


def _progress(items: list, desc: str, show: bool) -> Iterable:
    """``items``, with a tqdm progress bar when asked for and tqdm is installed
    (``pip install torchjax[compare]``)."""
    if not show:
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=desc, unit="op", leave=False)


def op_entries(calls: list[OpCall], transforms, *, reference: bool, rtol, atol, progress: bool = False) -> list[Entry]:
    """The ``forward`` and ``grad`` entries for each recorded op."""
    run = jit(_run_op)  # one per comparison: a rule registered since is seen
    run_vjp = jit(_op_vjp)
    entries: list[Entry] = []
    if "forward" in transforms:
        for c in _progress(calls, "compare forward", progress):
            entries.extend(_forward_entries(run, c, reference=reference, rtol=rtol, atol=atol))
    if "grad" in transforms:
        backward = list(reversed(list(enumerate(calls))))  # backward order
        for i, c in _progress(backward, "compare grad", progress):
            entries.extend(_grad_entries(run_vjp, i, c, reference=reference, rtol=rtol, atol=atol))
    return entries


def _forward_entries(run, c: OpCall, *, reference, rtol, atol) -> list[Entry]:
    op = str(c.func)
    try:
        with torch.no_grad():
            act = tensor_leaves(run(c.func, *_clone((c.args, c.kwargs))))
    except Exception as err:  # the op's failure, reported as its entry
        return [missing("forward", n, "op", op, c.outputs[i], f"{type(err).__name__}: {err}")
                for i, n in enumerate(leaf_names(c.name, len(c.outputs)))]  # fmt: skip
    ref = None
    if reference:
        try:
            args64, kwargs64 = to_double(_clone((c.args, c.kwargs)))
            with torch.no_grad():
                ref = tensor_leaves(c.func(*args64, **kwargs64))
        except Exception:  # an op with no float64 kernel: compared without a reference
            ref = None
    out = []
    for i, name in enumerate(leaf_names(c.name, len(c.outputs))):
        r = ref[i] if ref is not None and i < len(ref) and ref[i].shape == c.outputs[i].shape else None
        if i >= len(act):
            out.append(missing("forward", name, "op", op, c.outputs[i], "torchjax did not produce it"))
        else:
            out.append(measure("forward", name, "op", op, act[i], c.outputs[i], r, rtol=rtol, atol=atol))
    return out


def _grad_entries(run_vjp, index: int, c: OpCall, *, reference, rtol, atol) -> list[Entry]:
    leaves = pytree.tree_leaves((c.args, c.kwargs))
    positions = tuple(i for i, x in enumerate(leaves) if is_float(x))
    float_outs = [t for t in c.outputs if is_float(t)]
    if not positions or not float_outs or c.func._schema.is_mutable:
        return []
    g = torch.Generator().manual_seed(index)
    cots = [torch.randn(t.shape, generator=g, dtype=torch.float64).to(t.dtype) for t in float_outs]
    try:
        expected = _op_vjp(c.func, *_clone((c.args, c.kwargs)), positions, cots, _TorchFunc)
    except Exception:  # torch has no derivative here (an integer-valued op): nothing to compare
        return []
    op = str(c.func)
    names = [c.name if len(positions) == 1 else f"{c.name}[in{k}]" for k in range(len(positions))]
    try:
        actual = run_vjp(c.func, *_clone((c.args, c.kwargs)), positions, cots, _TorchjaxFunc)
    except Exception as err:  # the op's failure, reported as its entry
        return [
            missing("grad", n, "grad_input", op, e, f"{type(err).__name__}: {err}") for n, e in zip(names, expected)
        ]
    ref = None
    if reference:
        try:
            args64, kwargs64 = to_double(_clone((c.args, c.kwargs)))
            ref = _op_vjp(
                c.func,
                args64,
                kwargs64,
                positions,
                [t.double() if t.is_floating_point() else t for t in cots],
                _TorchFunc,
            )
        except Exception:  # no float64 derivative kernel: compared without a reference
            ref = None
    out = []
    for k, (name, e, a) in enumerate(zip(names, expected, actual)):
        r = ref[k] if ref is not None else None
        out.append(measure("grad", name, "grad_input", op, a, e, r, rtol=rtol, atol=atol))
    return out
