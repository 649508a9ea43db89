"""The user's function or module as one ``nn.Module``, and the hooks that watch it run.

Wrapping a function in :class:`Target` makes the modules it closes over submodules, so
``torch.func.functional_call`` can swap in float64 (or differentiated) parameters for a
plain function as for a module, and every module it runs has a path to report.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch.utils import _pytree as pytree

ROOT = "<root>"


class Target(torch.nn.Module):
    """``fn`` (a module, or a function and the modules its closure holds) as one module."""

    def __init__(self, fn: Callable):
        super().__init__()
        object.__setattr__(self, "fn", fn)  # not a submodule: `root`/`mods` are
        self.is_module = isinstance(fn, torch.nn.Module)
        if self.is_module:
            self.root = fn
        else:
            self.mods = torch.nn.ModuleDict(_closure_modules(fn))
        self.fn_name = type(fn).__name__ if self.is_module else getattr(fn, "__qualname__", type(fn).__name__)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def public_name(self, internal: str) -> str:
        """A name of ``named_modules``/``named_parameters`` as the user knows it."""
        for prefix in ("root.", "mods."):
            if internal.startswith(prefix):
                return internal[len(prefix) :]
        if internal == "root":
            return ROOT
        return self.fn_name if internal == "" else internal

    def watched(self) -> list[tuple[str, torch.nn.Module]]:
        """(path, module) of every module whose calls are reported, outermost first."""
        out = []
        for name, m in self.named_modules():
            if name == "mods" or (name == "" and self.is_module):
                continue
            out.append((self.public_name(name), m))
        return out


def _closure_modules(fn) -> dict[str, torch.nn.Module]:
    found: dict[str, torch.nn.Module] = {}
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, torch.nn.Module):
        found["self"] = owner
    code = getattr(fn, "__code__", None)
    cells = getattr(fn, "__closure__", None) or ()
    for name, cell in zip(code.co_freevars if code else (), cells):
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if isinstance(value, torch.nn.Module):
            found[name] = value
    # module-level models the function reads by name (`def loss(x): return model(x)`)
    globals_ = getattr(fn, "__globals__", {})
    for name in code.co_names if code else ():
        value = globals_.get(name)
        if isinstance(value, torch.nn.Module) and name not in found:
            found[name] = value
    return found


def is_float(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and (x.is_floating_point() or x.is_complex())


def tensor_leaves(tree: Any) -> list[torch.Tensor]:
    return [x for x in pytree.tree_leaves(tree) if isinstance(x, torch.Tensor)]


def to_double(tree: Any) -> Any:
    """Every float32/16 tensor of ``tree`` in float64 (complex64 in complex128)."""

    def conv(x):
        if isinstance(x, torch.Tensor) and x.is_floating_point() and x.dtype != torch.float64:
            return x.detach().double()
        if isinstance(x, torch.Tensor) and x.dtype == torch.complex64:
            return x.detach().to(torch.complex128)
        return x

    return pytree.tree_map(conv, tree)


@dataclasses.dataclass
class Call:
    """One call of a module: its key (path, ``#n`` from the second call on), type, and when
    it began (``pre``) and returned (``post``) on the hooks' clock."""

    key: str
    path: str
    op: str
    module: torch.nn.Module
    pre: int
    post: int = -1
    float_inputs: list[tuple[int, tuple[int, ...], torch.dtype]] = dataclasses.field(default_factory=list)


class Recorder:
    """Forward hooks on every watched module of a :class:`Target` while entered.

    Records each call (:class:`Call`), the tensor leaves of its output (cloned, as they
    were when the module returned: an in-place op after it does not change them), and,
    with ``inputs=True``, its arguments. With ``eps`` (a dict ``"<key>|<leaf>" -> zeros``)
    it adds ``eps`` to the module's floating inputs, whose gradient is then the gradient
    with respect to that input. The hooks work on torch tensors and on torchjax's
    tensors while torchjax traces, so one recorder serves both sides.
    """

    def __init__(self, target: Target, *, inputs: bool = False, eps: dict | None = None):
        self.target = target
        self.keep_inputs = inputs
        self.eps = eps
        self.calls: dict[str, Call] = {}
        self.outputs: dict[str, list[torch.Tensor]] = {}
        self.inputs: dict[str, tuple[tuple, dict]] = {}
        self.stack: list[Call] = []
        self._counts: dict[int, int] = {}
        self._clock = 0
        self.busy = False  # inside a hook: its own ops (clones, eps) are not the model's
        self._handles: list = []
        self._paths = {id(m): p for p, m in target.watched()}

    def __enter__(self) -> Recorder:
        for _path, m in self.target.watched():
            self._handles.append(m.register_forward_pre_hook(self._pre, with_kwargs=True))
            self._handles.append(m.register_forward_hook(self._post))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def path(self) -> str:
        """The key of the innermost module running now (the root's name outside any)."""
        return self.stack[-1].key if self.stack else self.target.fn_name

    def _pre(self, module, args, kwargs):
        path = self._paths[id(module)]
        n = self._counts.get(id(module), 0) + 1
        self._counts[id(module)] = n
        key = path if n == 1 else f"{path}#{n}"
        call = Call(key, path, type(module.fn if module is self.target else module).__name__, module, self._clock)
        self._clock += 1
        leaves, spec = pytree.tree_flatten((args, kwargs))
        call.float_inputs = [(i, tuple(x.shape), x.dtype) for i, x in enumerate(leaves) if is_float(x)]
        self.calls[key] = call
        self.stack.append(call)
        self.busy = True
        try:
            return self._inputs(key, call, args, kwargs, leaves, spec)
        finally:
            self.busy = False

    def _inputs(self, key, call, args, kwargs, leaves, spec):
        if self.keep_inputs:
            self.inputs[key] = pytree.tree_map(
                lambda x: x.detach().clone() if isinstance(x, torch.Tensor) else x, (args, kwargs)
            )
        if self.eps is not None:
            changed = False
            for i, *_ in call.float_inputs:
                e = self.eps.get(f"{key}|{i}")
                if e is not None:
                    leaves[i] = leaves[i] + e
                    changed = True
            if changed:
                return pytree.tree_unflatten(leaves, spec)
        return None

    def _post(self, module, args, output):
        call = self.stack.pop()
        call.post = self._clock
        self._clock += 1
        self.busy = True
        try:
            self.outputs[call.key] = [t.clone() for t in tensor_leaves(output)]
        finally:
            self.busy = False
        return None


def leaf_names(key: str, n: int) -> list[str]:
    """``key`` for a single tensor output, ``key[i]`` for each of several."""
    return [key] if n == 1 else [f"{key}[{i}]" for i in range(n)]
