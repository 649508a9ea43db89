"""Capture: running torch code on JaxTensors to get a pure JAX function.

The torch callable runs under :class:`CaptureMode` with JaxTensors for its inputs.
Tensors it reaches that are not inputs (closures, module attributes) are *captured*:
they become extra inputs of the pure function, read afresh (through the crossing
cache) on every call, so nothing compiled ever holds a stale value. Writes to inputs
or captured tensors are returned as updates and applied by the caller.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import torch
from torch.utils import _pytree as pytree

from .autograd_function import intercept_apply
from .checkpoint import intercept_checkpoint
from .crossing import crossing_cache, write_all, write_into
from .dispatch import CaptureMode
from .errors import TracingError
from .hf import convert_caches
from .module_path import module_path_tracking
from .tensor import JaxTensor, array_of, pop_context, push_context


def is_array(x) -> bool:
    return isinstance(x, (jax.Array, jax.core.Tracer))


class Context:
    """State of one capture level: which outer tensors it lifted, its PRNG key."""

    def __init__(
        self, capture: Capture | None, captured_values=(), key=None, parent=None, rng_error=None, key_factory=None
    ):
        self.capture = capture
        self.key_factory = key_factory
        self.captured_values = list(captured_values)
        self.key = key
        self.parent = parent
        self.rng_error = rng_error
        self.lifted: dict[int, tuple[torch.Tensor, JaxTensor, int | None]] = {}
        self.aliases: dict[int, tuple[torch.Tensor, JaxTensor]] = {}
        self.discovered = False
        self._counter = 0
        self.used_random = False
        # under a torchjax.func transform: torch.func's rules (autograd.Function needs setup_context)
        self.torch_func = parent.torch_func if parent is not None else False

    def fresh(self) -> Context:
        """A root context for code JAX runs after this capture has ended (a custom backward)."""
        return Context(None, key_factory=seed_from_torch)

    def child(self) -> Context:
        """A level below this one for code that JAX traces apart (a checkpointed region): it
        reads this level's tensors and keys, and keeps its own in-place writes."""
        return Context(None, parent=self, rng_error=self.rng_error)

    def alias(self, t: torch.Tensor, jt: JaxTensor) -> None:
        """Make ``t`` stand for ``jt``, one of the traced function's inputs (training state
        read by path: a parameter's ``.grad``, an optimizer's state)."""
        self.aliases[id(t)] = (t, jt)

    def lift(self, t: torch.Tensor) -> JaxTensor:
        hit = self.lifted.get(id(t))
        if hit is not None:
            return hit[1]
        alias = self.aliases.get(id(t))
        if alias is not None and alias[0] is t:
            return alias[1]
        slot = None
        if self.parent is not None:
            value = self.parent.lift(t).value
        else:
            slot = self.capture.slot(t) if self.capture is not None else None
            if slot is not None and slot < len(self.captured_values):
                value = self.captured_values[slot]
            else:
                self.discovered = True
                value = crossing_cache.get(t)
        jt = JaxTensor(value)
        self.lifted[id(t)] = (t, jt, slot)
        return jt

    def next_key(self) -> jax.Array:
        """A fresh key for one random op; marks every level as using randomness."""
        if self.rng_error is not None:
            raise RuntimeError(self.rng_error)
        level: Context | None = self
        while level is not None:
            level.used_random = True
            level = level.parent
        return self.derive_key()

    def derive_key(self) -> jax.Array:
        """A new key folded from this level's base key and a Python counter.

        Only a Python int changes here, never an array stored on an outer level, so a
        key drawn inside a nested JAX transform cannot leak that transform's tracers.
        """
        if self.key is None:
            if self.parent is not None:
                self.key = self.parent.derive_key()
            elif self.key_factory is not None:
                self.key = jnp.asarray(self.key_factory())
            else:
                raise TracingError("torchjax: a random op ran with no PRNG key available")
        self._counter += 1
        return jax.random.fold_in(self.key, self._counter)

    def mutated_lifted(self) -> list[tuple[torch.Tensor, JaxTensor, int | None]]:
        return [entry for entry in self.lifted.values() if entry[1].mutated]


def seed_from_torch() -> np.ndarray:
    """Two uint32 words drawn from torch's default generator: ``torch.manual_seed`` reproduces them."""
    words = torch.randint(0, 2**32, (2,), dtype=torch.int64)
    return words.numpy().astype(np.uint32)


@dataclass
class TraceResult:
    out: Any  # pytree (torch pytree containers) of arrays / python values
    arg_updates: dict[int, Any] = field(default_factory=dict)  # flat input leaf index -> new value
    lifted_updates: list[tuple[torch.Tensor, Any, int | None]] = field(default_factory=list)
    trains: bool = False  # a training step (backward, optimizer): its outputs are plain values
    again: bool = False  # the trace is not to be compiled: its caller gathers and traces again


def _wrap_input(x):
    return JaxTensor(x) if is_array(x) else x


def run_traced(fn: Callable, args: tuple, kwargs: dict, ctx: Context) -> TraceResult:
    """Run torch ``fn`` on JaxTensors made from the arrays in ``args``/``kwargs``."""
    leaves, spec = pytree.tree_flatten((args, kwargs))
    wrapped = [_wrap_input(x) for x in leaves]
    targs, tkwargs = pytree.tree_unflatten(wrapped, spec)
    # A capture of its own (not one level of a transform inside another) starts with
    # gradients recorded, whatever the caller's grad mode: torch.func ignores a no_grad
    # around a transform, and torch.no_grad() *inside* the code is what must be seen.
    grad_mode = _recording() if ctx.parent is None else contextlib.nullcontext()
    push_context(ctx)
    try:
        with CaptureMode(), grad_mode, intercept_apply(), intercept_checkpoint(), module_path_tracking(fn):
            out = convert_caches(fn(*targs, **tkwargs))
            out = pytree.tree_map(array_of, out, is_leaf=is_size)
            _check_outputs(fn, out)
    finally:
        pop_context()
    arg_updates = {i: w.value for i, w in enumerate(wrapped) if isinstance(w, JaxTensor) and w.mutated}
    lifted_updates = [(t, jt.value, slot) for t, jt, slot in ctx.mutated_lifted()]
    return TraceResult(out, arg_updates, lifted_updates)


@contextlib.contextmanager
def _recording():
    with torch.inference_mode(False), torch.enable_grad():
        yield


_PLAIN_OUTPUTS = (type(None), bool, int, float, complex, str, bytes, torch.dtype, torch.device, torch.Size,
                  torch.layout, torch.memory_format)  # fmt: skip


def is_size(x) -> bool:
    """torch's pytree flattens a ``torch.Size`` into ints and rebuilds a tuple; outputs keep it whole."""
    return type(x) is torch.Size


def _check_outputs(fn, out) -> None:
    """Outputs are arrays, plain values, or containers torch's pytree can look into."""
    for x in pytree.tree_leaves(out, is_leaf=is_size):
        if not (is_array(x) or isinstance(x, _PLAIN_OUTPUTS)):
            name = getattr(fn, "__qualname__", type(fn).__name__)
            raise TypeError(
                f"torchjax: {name} returned an object of type {type(x).__name__}, which is not a "
                "tensor, a Python scalar or a container torch's pytree knows, so torchjax cannot tell "
                "whether it holds tensors. Return tensors (for transformers models: use_cache=False), "
                "or register the type with torch.utils._pytree.register_pytree_node."
            )


class Capture:
    """A torch callable and the tensors it captures (in the order first met)."""

    def __init__(self, fn: Callable):
        self.fn = fn
        self.captured: list[torch.Tensor] = []
        self._slots: dict[int, int] = {}

    def slot(self, t: torch.Tensor) -> int:
        s = self._slots.get(id(t))
        if s is None or self.captured[s] is not t:
            s = len(self.captured)
            self.captured.append(t)
            self._slots[id(t)] = s
        return s

    def captured_values(self, n: int | None = None) -> list[jax.Array]:
        tensors = self.captured if n is None else self.captured[:n]
        return [crossing_cache.get(t) for t in tensors]


def write_back(t: torch.Tensor, value) -> None:
    """Apply an update computed by JAX to the torch tensor it belongs to."""
    write_into(t, value)


def write_back_all(updates: list, released=frozenset()) -> None:
    """Apply updates computed by JAX, ``[(tensor, value)]``, to their torch tensors
    (``released``: ids of tensors whose storage was let go for the call, see crossing)."""
    write_all(updates, released)


def any_tracer(leaves) -> bool:
    return any(isinstance(x, jax.core.Tracer) for x in leaves)


def x64():
    """The scope in which torchjax runs its own JAX work."""
    return jax.enable_x64(True)


def as_jnp(x):
    return jnp.asarray(x)


# Types registered with JAX's pytree registry, which cannot forget a registration: not a
# cache, so not in the cache registry (emptied, the next bridging would register a type
# twice, which JAX refuses). It also holds types JAX flattened already, to look them up once.
_BRIDGED: set[type] = set()


def bridge_pytree_types(tree) -> None:
    """Make container types that torch's pytree knows (HF ``ModelOutput``, ...) JAX pytrees too.

    Outputs of a ``to_jax`` function leave in the torch code's own containers; JAX can
    return them from ``jax.jit`` only if it knows how to flatten them. Only types JAX
    does not know are registered, with torch's own flatten/unflatten functions.
    """
    _, spec = pytree.tree_flatten(tree)
    stack = [spec]
    while stack:
        node = stack.pop()
        stack.extend(node.children())
        cls = node.type
        if cls is None or cls in _BRIDGED or cls in (tuple, list, dict) or node.is_leaf():
            continue
        _BRIDGED.add(cls)
        probe = jax.tree_util.tree_structure(_instance_probe(node))
        if probe.num_leaves != 1 or not jax.tree_util.treedef_is_leaf(probe):
            continue  # JAX already flattens this type
        entry = pytree.SUPPORTED_NODES[cls]

        def flatten(obj, entry=entry):
            children, context = entry.flatten_fn(obj)
            return children, context

        def unflatten(context, children, entry=entry):
            return entry.unflatten_fn(list(children), context)

        jax.tree_util.register_pytree_node(cls, flatten, unflatten)


class _Probe:
    pass


def _instance_probe(node):
    # A placeholder standing for an instance of node.type: JAX only needs to look up the type.
    try:
        return pytree.tree_unflatten([_Probe()] * node.num_leaves, node)
    except (TypeError, ValueError, AttributeError):
        # the type's own unflatten rejects placeholders (a dataclass whose __post_init__
        # reads its fields): a bare stand-in, which JAX takes for a leaf
        return _Probe()
