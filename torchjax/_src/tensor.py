"""``JaxTensor``: a torch.Tensor whose payload is a JAX array (or tracer).

Every ATen op on a ``JaxTensor`` (and, while a capture is running, every ATen op at
all) goes to the dispatcher (``dispatch.py``). Views share a :class:`_Storage` with
their base, so a write through a view changes the base as in torch. This module also
keeps the per-thread stack of running captures and lifts plain tensors into the
innermost one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import jax
import jax.numpy as jnp
import torch

from . import dtypes
from .crossing import to_jax_array
from .errors import TracingError

aten = torch.ops.aten


class _Storage:
    """The mutable box that a base tensor and all of its views share."""

    __slots__ = ("value", "version")

    def __init__(self, value: jax.Array):
        self.value = value
        self.version = 0


class JaxTensor(torch.Tensor):
    """A torch tensor backed by a ``jax.Array``; produced while torchjax traces torch code."""

    _storage: _Storage
    _view_fn: Callable[[jax.Array], jax.Array] | None
    _cached: jax.Array
    _cached_version: int

    @staticmethod
    def __new__(cls, value, storage: _Storage | None = None, view_fn=None):
        r = torch.Tensor._make_wrapper_subclass(
            cls,
            tuple(value.shape),
            dtype=dtypes.to_torch_dtype(value.dtype),
            device="cpu",
            requires_grad=False,
        )
        r._storage = storage if storage is not None else _Storage(value)
        r._view_fn = view_fn
        r._cached = value
        r._cached_version = r._storage.version
        r._reinterprets = False
        r._detached = False
        return r

    def __init__(self, value, storage=None, view_fn=None):
        super().__init__()

    @property
    def value(self) -> jax.Array:
        """The current JAX value (recomputed from the base after a write)."""
        st = self._storage
        if self._cached_version != st.version:
            self._cached = st.value if self._view_fn is None else self._view_fn(st.value)
            self._cached_version = st.version
        return self._cached

    def jax(self) -> jax.Array:
        """The JAX value; also how transformers recognises a tensor traced by JAX."""
        return self.value

    @property
    def mutated(self) -> bool:
        return self._storage.version > 0

    def set_value(self, new: jax.Array) -> None:
        """Write ``new`` into this tensor (and so into its base, for a view)."""
        target_dtype = dtypes.to_jax_dtype(self.dtype)
        new = jnp.asarray(new)
        if new.dtype != target_dtype:
            new = new.astype(target_dtype)
        if tuple(new.shape) != tuple(self.shape):
            new = jnp.broadcast_to(new, tuple(self.shape))
        st = self._storage
        if self._reinterprets:
            raise TracingError(
                "torchjax: cannot write through a view that reinterprets its base's bytes "
                "(Tensor.view(dtype), view_as_real, view_as_complex); write to the base, or to a "
                "copy (.clone()), instead"
            )
        if self._view_fn is None:
            st.value = new
        else:
            base = st.value
            index_map = self._view_fn(jnp.arange(base.size).reshape(base.shape))
            if index_map.shape != new.shape:
                raise TracingError("torchjax: cannot write through this view (it reinterprets its base)")
            flat = base.reshape(-1).at[index_map.reshape(-1)].set(new.reshape(-1))
            st.value = flat.reshape(base.shape)
        st.version += 1
        self._cached = new
        self._cached_version = st.version

    def view_of(self, fn: Callable[[jax.Array], jax.Array], value: jax.Array, reinterprets: bool = False) -> JaxTensor:
        parent = self._view_fn
        composite = fn if parent is None else (lambda base: fn(parent(base)))
        out = JaxTensor(value, self._storage, composite)
        out._reinterprets = reinterprets or self._reinterprets
        out._detached = self._detached
        return out

    def __repr__(self, *, tensor_contents=None) -> str:
        return f"JaxTensor({self.value!r})"

    __torch_function__ = torch._C._disabled_torch_function_impl

    def map_read(self, fn: Callable[[jax.Array], jax.Array]) -> None:
        """Make every later read of this tensor pass through ``fn`` (a stop-gradient).

        A view composes ``fn`` after its view function; a tensor that owns its storage
        (a fresh op output) has its stored value replaced.
        """
        if self._view_fn is None:
            st = self._storage
            st.value = fn(st.value)
            st.version += 1
        else:
            view_fn = self._view_fn
            self._view_fn = lambda base: fn(view_fn(base))
            self._cached = fn(self._cached)

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        return _route[0](func, args, kwargs or {})


def route_ops_to(handler: Callable) -> None:
    """Send every op on a JaxTensor to ``handler(func, args, kwargs)``: the dispatcher
    (``dispatch.py``, the room above this one) installs itself here when imported."""
    _route[0] = handler


def _not_routed(func, args, kwargs):
    raise RuntimeError(f"torchjax: {func} reached a JaxTensor before torchjax's dispatcher was imported")


_route: list[Callable] = [_not_routed]


# --------------------------------------------------------------------------- context

_state = threading.local()


def current_context():
    stack = getattr(_state, "stack", None)
    return stack[-1] if stack else None


def current_key() -> jax.Array:
    """A fresh PRNG key from the innermost capture (random-op rules call this)."""
    ctx = current_context()
    if ctx is None:
        raise TracingError("torchjax: a random op ran outside a capture")
    return ctx.next_key()


def push_context(ctx) -> None:
    if not hasattr(_state, "stack"):
        _state.stack = []
    _state.stack.append(ctx)


def pop_context() -> None:
    _state.stack.pop()


# --------------------------------------------------------------------------- lifting


def _concrete(t: torch.Tensor) -> jax.Array:
    return to_jax_array(t)


def lift(t: torch.Tensor) -> JaxTensor:
    """The JaxTensor standing for a plain torch tensor met during a capture."""
    if isinstance(t, JaxTensor):
        return t
    ctx = current_context()
    if ctx is None:
        return JaxTensor(_concrete(t))
    return ctx.lift(t)


def array_of(x):
    """A JaxTensor's value, a plain tensor's (lifted into the current capture); else ``x``."""
    if isinstance(x, JaxTensor):
        return x.value
    if isinstance(x, torch.Tensor):
        return lift(x).value
    return x
